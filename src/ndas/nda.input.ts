import { BadRequestException, ParseUUIDPipe } from '@nestjs/common';

/** Body of `POST /ndas`. */
export interface CreateNdaInput {
  title: string;
  counterparty: string;
}

/** Body of `PATCH /ndas/:id`: at least one field. */
export type UpdateNdaInput = Partial<CreateNdaInput>;

const FIELDS = ['title', 'counterparty'] as const;
const MAX_LENGTH = 500;

/** Validates a create body; answers 400 with what is wrong. */
export function parseCreateNda(body: unknown): CreateNdaInput {
  const input = parseFields(body);
  for (const field of FIELDS) {
    if (input[field] === undefined) throw new BadRequestException(`"${field}" is required`);
  }
  return input as CreateNdaInput;
}

/** Validates an update body; answers 400 with what is wrong. */
export function parseUpdateNda(body: unknown): UpdateNdaInput {
  const input = parseFields(body);
  if (Object.keys(input).length === 0) throw new BadRequestException(`give at least one of ${FIELDS.join(', ')}`);
  return input;
}

/** Route ids are UUIDs; anything else answers 400. */
export const NdaIdPipe = new ParseUUIDPipe();

function parseFields(body: unknown): UpdateNdaInput {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new BadRequestException('body must be a JSON object');
  const record = body as Record<string, unknown>;
  const unknown = Object.keys(record).filter((key) => !(FIELDS as readonly string[]).includes(key));
  if (unknown.length > 0) throw new BadRequestException(`unknown field(s): ${unknown.join(', ')}`);
  const input: UpdateNdaInput = {};
  for (const field of FIELDS) {
    const value = record[field];
    if (value === undefined) continue;
    if (typeof value !== 'string' || value.trim() === '') throw new BadRequestException(`"${field}" must be a non-empty string`);
    if (value.includes('\u0000')) throw new BadRequestException(`"${field}" must not contain NUL characters`);
    if (value.length > MAX_LENGTH) throw new BadRequestException(`"${field}" must be at most ${MAX_LENGTH} characters`);
    input[field] = value;
  }
  return input;
}
