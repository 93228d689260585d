import { partitionsChecked } from './app';
import { type INestApplication, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import {
  AUDIT_MIGRATIONS,
  AuditLog,
  AuditModule,
  AuditSealer,
  type AuditHttpOptions,
  type AuditModuleOptions,
  AUDIT_EVENTS,
} from '../../src/audit';
import { runVerify } from '../../src/audit/integrity/verify-command';
import { type StderrCapture } from './stderr';

/** An Ed25519 key pair: the private key as the option takes it, the public key as `--public-key` takes it. */
export function sealingKeys(): { privatePem: string; publicPem: string; publicKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    publicKey,
  };
}

/** A small app with the audit module on `url` (migrations run), integrity on unless `audit` says otherwise. */
export async function startSealingApp(
  url: string,
  audit: AuditModuleOptions & { http?: AuditHttpOptions } = {},
): Promise<INestApplication> {
  @Module({
    imports: [
      TypeOrmModule.forRoot({ type: 'postgres', url, entities: [AuditLog], migrations: [...AUDIT_MIGRATIONS], migrationsRun: true }),
      AuditModule.forRoot({ auditHttp: false, ...audit, integrity: { enabled: true, intervalMs: 200, ...audit.integrity } }),
    ],
  })
  class SealingAppModule {}
  const moduleRef = await Test.createTestingModule({ imports: [SealingAppModule] }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  await partitionsChecked(app);
  // The sealer's first attempt, scheduled at start, done (sealNow runs after it): run late, it would
  // seal rows a suite writes next in a seal of its own, and shift the seals the suite counts.
  if (audit.integrity?.enabled !== false) await app.get(AuditSealer).sealNow();
  return app;
}

/** The `audit.sealed` lines captured so far, as a CloudWatch export would hold them (one JSON line each). */
export function witnessText(stderr: StderrCapture): string {
  return stderr
    .of(AUDIT_EVENTS.sealed)
    .map((line) => `${JSON.stringify(line)}\n`)
    .join('');
}

/** Runs `audit-verify` with `args` against `url`, in this process, as the CLI would. */
export async function verify(url: string, ...args: string[]): Promise<{ code: number; out: string[]; anomalies: string[] }> {
  const out: string[] = [];
  const code = await runVerify(['--url', url, ...args], {}, { out: (line) => out.push(line), err: (line) => out.push(line) });
  return { code, out, anomalies: out.filter((line) => line.startsWith('ANOMALY')).map((line) => line.split(':')[0]) };
}
