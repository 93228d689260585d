import { mkdir, open, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';

/** The few operations the spool does on an open file; a `FileHandle` of `node:fs/promises` has them. */
export interface SpoolFileHandle {
  write(buffer: Uint8Array, offset: number, length: number): Promise<{ bytesWritten: number }>;
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  truncate(length: number): Promise<void>;
  sync(): Promise<void>;
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
}

/**
 * The file system as the spool sees it: a seam, so that tests can make a disk fill up, a write
 * come back short or an fsync wait. {@link nodeSpoolFiles} is the real one.
 *
 * @example
 * const files: SpoolFiles = { ...nodeSpoolFiles, unlink: () => Promise.reject(new Error('EACCES')) };
 * await FileSpool.open(dir, { maxBytes: 1 << 30, segmentBytes: 8 << 20, files });
 */
export interface SpoolFiles {
  /** `'a'`: append (created 0600 if missing); `'r'`: read (also a directory, to fsync it). */
  open(path: string, flags: 'a' | 'r', mode?: number): Promise<SpoolFileHandle>;
  mkdir(path: string, mode: number): Promise<void>;
  readdir(path: string): Promise<string[]>;
  /** The size of the file at `path`, without opening it (another owner's segments are only measured). */
  stat(path: string): Promise<{ size: number }>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  readFile(path: string): Promise<string>;
  writeFile(path: string, text: string, mode: number): Promise<void>;
}

/**
 * The spool's file operations on the real disk.
 *
 * @example
 * await FileSpool.open(dir, { maxBytes: 1 << 30, segmentBytes: 8 << 20, files: nodeSpoolFiles });
 */
export const nodeSpoolFiles: SpoolFiles = {
  open: (path, flags, mode) => open(path, flags, mode),
  mkdir: async (path, mode) => void (await mkdir(path, { recursive: true, mode })),
  readdir: (path) => readdir(path),
  stat: async (path) => ({ size: (await stat(path)).size }),
  rename: (from, to) => rename(from, to),
  unlink: (path) => unlink(path),
  readFile: (path) => readFile(path, 'utf8'),
  writeFile: (path, text, mode) => writeFile(path, text, { mode }),
};
