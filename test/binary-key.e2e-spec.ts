import { Body, Controller, type INestApplication, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import request from 'supertest';
import { Column, DataSource, Entity, PrimaryColumn } from 'typeorm';
import { AuditedEntity } from '../src/audit';
import { changesOf, startDiffsApp } from './support/diffs-app';
import { TestPostgres } from './support/postgres';

/** An audited entity keyed by its bytes (a key fingerprint). */
@AuditedEntity({ type: 'Fingerprint' })
@Entity('fingerprint')
class Fingerprint {
  @PrimaryColumn('bytea') digest!: Buffer;
  @Column('text') owner!: string;
}

/** An audited entity keyed by its bytes and a text, both key columns. */
@AuditedEntity({ type: 'Grant' })
@Entity('grant_key')
class Grant {
  @PrimaryColumn('bytea') digest!: Buffer;
  @PrimaryColumn('text') scope!: string;
}

@Controller('binary-key')
class BinaryController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Post('fingerprint')
  async fingerprint(@Body() body: { bytes: string }): Promise<void> {
    await this.db.getRepository(Fingerprint).save({ digest: Buffer.from(body.bytes), owner: 'ops' });
  }

  @Post('grant')
  async grant(@Body() body: { bytes: string }): Promise<void> {
    await this.db.getRepository(Grant).save({ digest: Buffer.from(body.bytes), scope: 'read' });
  }
}

// docs/GUIDE.md ("Diffs"): "Binary data (a bytea column's Buffer, a typed array) is never written:
// it is its length and the first 16 hex digits of the SHA-256 of its bytes". A bytea key column is
// such a column too: the change's id shows it the same way, never its bytes.
describe('a binary key column in the change id is shown as its length and hash', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startDiffsApp(db, { mode: 'sync' }, { controllers: [BinaryController], entities: [Fingerprint, Grant] });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  const idAfter = async (path: string, tag: string): Promise<unknown> => {
    await request(app.getHttpServer())
      .post(`/binary-key/${path}`)
      .set('x-request-id', tag)
      .send({ bytes: 'private-key-bytes' })
      .expect(201);
    const entities = (await changesOf(db, tag)).entities as { id: unknown; fields?: Record<string, unknown> }[];
    expect(entities).toHaveLength(1);
    expect(JSON.stringify(entities[0].fields)).toMatch(/\[Buffer 17 bytes, sha256 [0-9a-f]{16}\]/);
    return entities[0].id;
  };

  it('writes no bytes of a single bytea key', async () => {
    const id = await idAfter('fingerprint', 'pbk-1');
    expect(JSON.stringify(id)).not.toContain('private-key-bytes');
    expect(id).toMatch(/^\[Buffer 17 bytes, sha256 [0-9a-f]{16}\]$/);
  });

  it('writes no bytes of a bytea column of a composite key', async () => {
    const id = await idAfter('grant', 'pbk-2');
    expect(JSON.stringify(id)).not.toContain('"data":[112,114,105');
    expect(JSON.stringify(id)).not.toContain('private-key-bytes');
    expect(id).toEqual({ digest: expect.stringMatching(/^\[Buffer 17 bytes/), scope: 'read' });
  });
});
