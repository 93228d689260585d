import { type Client } from 'pg';
import { type Anomaly } from '../integrity/verify-checks';
import { erasureLine, PersonalChecks } from './personal-checks';
import { commitment, ERASED, type PersonalPath } from './personal-values';

const SALT = 'c2FsdC1vZi10aGlzLXJvdy1pcy0zMi1ieXRlcy1sb25n';
const ERASURE = '01937a4c-0000-7000-8000-0000000000e1';
const OTHER = '01937a4c-0000-7000-8000-0000000000e2';

interface RowParts {
  userId?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  values?: [PersonalPath, string][];
  /** Paths committed to beyond the values present, or instead of the actor's (all derived when absent). */
  commitments?: [PersonalPath, string][];
  personal?: string | null;
  commitmentsText?: string | null;
}

/** A row's PERSONAL_CHECK_SQL text, as PostgreSQL selects it: a JSON array of five texts or NULLs. */
function rowText(parts: RowParts = {}): string {
  const { userId = 'u-1', ip = '10.0.0.7', userAgent = null, values = [[['changes', 'email'], '"a@example.com"']] } = parts;
  const actor: [string, string | null][] = [
    ['user_id', userId],
    ['ip', ip],
    ['user_agent', userAgent],
  ];
  const derived: [PersonalPath, string][] = [
    ...actor.filter(([, v]) => v !== null).map(([c, v]): [PersonalPath, string] => [[c], commitment(SALT, [c], v as string)]),
    ...values.map(([path, text]): [PersonalPath, string] => [path, commitment(SALT, path, text)]),
  ];
  const personal = parts.personal !== undefined ? parts.personal : JSON.stringify({ salt: SALT, values });
  const commitments = parts.commitmentsText !== undefined ? parts.commitmentsText : JSON.stringify(parts.commitments ?? derived);
  return JSON.stringify([userId, ip, userAgent, personal, commitments]);
}

/** An erased row's text: the marker of `erasure`, its actor columns as `audit_log_erase` leaves them. */
function erasedText(erasure = ERASURE, actor: Partial<RowParts> = {}): string {
  const { userId = ERASED, ip = ERASED, userAgent = null } = actor;
  const commitments = [
    ...(userId === null ? [] : [[['user_id'], 'x']]),
    ...(ip === null ? [] : [[['ip'], 'y']]),
    ...(userAgent === null ? [] : [[['user_agent'], 'z']]),
  ];
  return JSON.stringify([userId, ip, userAgent, `{"erased":"${erasure}"}`, JSON.stringify(commitments)]);
}

function judged(text: unknown): string | null {
  const found = new PersonalChecks().judge('row-1', text);
  if (found) expect(found).toMatchObject({ kind: 'row_personal_changed', row: 'row-1' });
  return found?.detail ?? null;
}

describe('PersonalChecks.judge: a row whose personal values still stand', () => {
  it('passes a row without commitments (NULL text) and a row whose values match their commitments', () => {
    expect(judged(null)).toBeNull();
    expect(judged(undefined)).toBeNull();
    expect(judged(rowText())).toBeNull();
    expect(judged(rowText({ userId: null, ip: null, userAgent: 'curl/8', values: [] }))).toBeNull();
  });

  it('names commitments or personal values not as the module writes them', () => {
    expect(judged(rowText({ commitmentsText: null }))).toBe('its commitments are not as the module writes them');
    expect(judged(rowText({ commitmentsText: '{"user_id":"x"}' }))).toBe('its commitments are not as the module writes them');
    expect(judged(rowText({ personal: null }))).toBe('its personal values are neither as the module writes them nor erased');
    expect(judged(rowText({ personal: '{"salt":7,"values":[]}' }))).toBe(
      'its personal values are neither as the module writes them nor erased',
    );
  });

  it('names a value committed to twice', () => {
    const twice: [PersonalPath, string][] = [
      [['user_id'], commitment(SALT, ['user_id'], 'u-1')],
      [['user_id'], commitment(SALT, ['user_id'], 'u-2')],
    ];
    expect(judged(rowText({ ip: null, values: [], commitments: twice }))).toBe('a personal value is committed to twice');
  });

  it.each([
    ['user_id', { userId: null }, 'missing'],
    ['ip', { ip: null }, 'missing'],
    ['user_agent', { userAgent: null }, 'missing'],
  ])('names an actor column %s that is gone while its commitment stays', (column, cleared: Partial<RowParts>, state) => {
    const full = { userId: 'u-1', ip: '10.0.0.7', userAgent: 'curl/8', values: [] };
    const commitments = (['user_id', 'ip', 'user_agent'] as const).map((c): [PersonalPath, string] => [[c], 'c']);
    expect(judged(rowText({ ...full, ...cleared, commitments }))).toBe(`its ${column} is ${state}, its commitments say otherwise`);
  });

  it.each([['user_id'], ['ip'], ['user_agent']])('names an actor column %s present without a commitment', (column) => {
    const commitments = ['user_id', 'ip', 'user_agent'].filter((c) => c !== column).map((c): [PersonalPath, string] => [[c], 'c']);
    const text = rowText({ userId: 'u-1', ip: '10.0.0.7', userAgent: 'curl/8', values: [], commitments });
    expect(judged(text)).toBe(`its ${column} is present, its commitments say otherwise`);
  });

  it('names a value added, a value never committed to and a value changed', () => {
    const email: [PersonalPath, string] = [['changes', 'email'], '"a@example.com"'];
    const phone: [PersonalPath, string] = [['metadata', 'phone'], '"+33 1"'];
    const added = rowText({ ip: null, values: [email, phone], commitments: [[['user_id'], commitment(SALT, ['user_id'], 'u-1')]] });
    expect(judged(added)).toBe('its personal values are not the ones committed to');
    const stray = rowText({
      ip: null,
      values: [phone],
      commitments: [
        [['user_id'], commitment(SALT, ['user_id'], 'u-1')],
        [['changes', 'email'], commitment(SALT, ['changes', 'email'], '"a@example.com"')],
      ],
    });
    expect(judged(stray)).toBe('its value at metadata.phone was never committed to');
    const derived = JSON.parse(rowText()) as string[];
    derived[3] = JSON.stringify({ salt: SALT, values: [[['changes', 'email'], '"b@example.com"']] });
    expect(judged(JSON.stringify(derived))).toBe('its value at changes.email does not match its commitment: changed, not erased');
    derived[3] = JSON.stringify({ salt: SALT, values: [email] });
    derived[1] = '10.0.0.8';
    expect(judged(JSON.stringify(derived))).toBe('its value at ip does not match its commitment: changed, not erased');
  });

  it('checks each value with the row salt', () => {
    const derived = JSON.parse(rowText()) as string[];
    derived[3] = JSON.stringify({ salt: SALT.replace('c', 'd'), values: [[['changes', 'email'], '"a@example.com"']] });
    expect(judged(JSON.stringify(derived))).toBe('its value at user_id does not match its commitment: changed, not erased');
  });

  it('does not take a path named __proto__ for one committed to', () => {
    const proto: [PersonalPath, string] = [['changes', '__proto__'], '"x"'];
    const text = rowText({ userId: null, ip: null, values: [proto], commitments: [[['changes', 'constructor'], 'c']] });
    expect(judged(text)).toBe('its value at changes.__proto__ was never committed to');
  });
});

describe('PersonalChecks.judge: an erased row', () => {
  it('counts an erased row whose actor columns hold the erased mark or nothing', () => {
    const checks = new PersonalChecks();
    expect(checks.judge('row-1', erasedText())).toBeNull();
    expect(checks.judge('row-2', erasedText(ERASURE, { userId: null, ip: null, userAgent: ERASED }))).toBeNull();
    expect(checks.report).toEqual({ erasedRows: 2, erasureEntries: 0 });
  });

  it('counts erased rows by erasure and month of their occurred_at (µs, UTC) when given it, and no row whose time is no instant', () => {
    const checks = new PersonalChecks();
    const us = (iso: string) => `${Date.parse(iso)}000`;
    checks.judge('row-1', erasedText(), us('2026-01-31T23:59:59.999Z'));
    checks.judge('row-2', erasedText(), `${Date.parse('2026-01-31T23:59:59.999Z')}999`);
    checks.judge('row-3', erasedText(), us('2026-02-01T00:00:00.000Z'));
    checks.judge('row-4', erasedText(OTHER), us('2026-02-01T00:00:00.000Z'));
    checks.judge('row-5', erasedText(), us('1969-12-31T23:59:59.999Z'));
    checks.judge('row-6', erasedText());
    for (const odd of [null, '', 'x', '1e15', '99999999999999999999']) checks.judge('row-7', erasedText(), odd);
    checks.judge('row-8', rowText(), us('2026-01-15T00:00:00.000Z'));
    expect(Object.fromEntries(checks.erasedByMonth(ERASURE))).toEqual({ '2026-01': 2, '2026-02': 1, '1969-12': 1 });
    expect(Object.fromEntries(checks.erasedByMonth(OTHER))).toEqual({ '2026-02': 1 });
    expect(checks.erasedByMonth('01937a4c-0000-7000-8000-0000000000e3').size).toBe(0);
    expect(checks.report.erasedRows).toBe(11);
  });

  it.each([
    ['blank before', ` {"erased":"${ERASURE}"}`],
    ['blank after', `{"erased":"${ERASURE}"} `],
    ['blank inside', `{"erased": "${ERASURE}"}`],
    ['upper-case id', `{"erased":"${ERASURE.toUpperCase()}"}`],
    ['id without dashes', `{"erased":"${ERASURE.replaceAll('-', '')}"}`],
    ['id one digit short', `{"erased":"${ERASURE.slice(0, -1)}"}`],
    ['id one digit long', `{"erased":"${ERASURE}0"}`],
    ['id with a letter past f', `{"erased":"${ERASURE.replace('e1', 'g1')}"}`],
    ['first group long', `{"erased":"${ERASURE.replace('01937a4c', '01937a4c0')}"}`],
    ['second group short', `{"erased":"${ERASURE.replace('-0000-7000', '-000-7000')}"}`],
    ['third group short', `{"erased":"${ERASURE.replace('-7000-', '-700-')}"}`],
    ['fourth group short', `{"erased":"${ERASURE.replace('-8000-', '-800-')}"}`],
  ])('names an erased marker not as audit_log_erase writes it: %s', (_what, marker) => {
    const text = JSON.stringify([ERASED, null, null, marker, '[[["user_id"],"x"]]']);
    const checks = new PersonalChecks();
    expect(checks.judge('row-1', text)?.detail).toBe('its erased marker is not as audit_log_erase writes it');
    expect(checks.report.erasedRows).toBe(0);
  });

  it('names each actor column of an erased row that holds a value again', () => {
    const checks = new PersonalChecks();
    const text = erasedText(ERASURE, { userId: 'u-1', ip: ERASED, userAgent: 'curl/8' });
    expect(checks.judge('row-1', text)?.detail).toBe(`erased, but its user_id, user_agent holds a value instead of ${ERASED}`);
    expect(checks.judge('row-2', erasedText(ERASURE, { ip: '10.0.0.7' }))?.detail).toBe(
      `erased, but its ip holds a value instead of ${ERASED}`,
    );
    expect(checks.report.erasedRows).toBe(0);
  });
});

interface Entry {
  id: string;
  erasure: string | null;
  count: string | null;
}

/** A client that answers the two statements of `finish`: the erasure entries, and the checkpoints' carried erasures. */
function client(entries: Entry[], checkpoints: (string | null)[] = []) {
  const asked: { sql: string; parameters: unknown[] | undefined }[] = [];
  const query = (sql: string, parameters?: unknown[]) => {
    asked.push({ sql, parameters });
    const rows = sql.includes('retention_erasures') ? checkpoints.map((erasures) => ({ erasures })) : entries;
    return Promise.resolve({ rows });
  };
  return { client: { query } as unknown as Client, asked };
}

/** Runs `finish` after judging `erased` rows (id → erasure), and returns what it added and its report. */
async function finish(
  erased: Record<string, string>,
  entries: Entry[],
  checkpoints: (string | null)[] = [],
  options: { forged?: ReadonlySet<string>; whole?: boolean } = {},
) {
  const checks = new PersonalChecks();
  for (const [id, erasure] of Object.entries(erased)) expect(checks.judge(id, erasedText(erasure))).toBeNull();
  const added: Anomaly[] = [];
  const answers = client(entries, checkpoints);
  await checks.finish(answers.client, 'audit.audit_log', (a) => added.push(a), options);
  return { added, report: checks.report, asked: answers.asked };
}

const entry = (count: string | null, erasure: string | null = ERASURE, id = 'entry-1'): Entry => ({ id, erasure, count });
const carried = (erased: Record<string, unknown>, entries: Record<string, unknown> = {}) => JSON.stringify({ erased, entries });

describe('PersonalChecks.finish: each erasure accounted for', () => {
  it('reads the erasure entries of the table and the checkpoints of its seal table', async () => {
    const { asked } = await finish({}, []);
    expect(asked).toHaveLength(2);
    expect(asked[0].sql).toContain('FROM "audit"."audit_log" AS l');
    expect(asked[0].parameters).toEqual(['audit_erasure']);
    expect(asked[1].sql).toContain('FROM "audit"."audit_seal" AS s');
  });

  it('finds nothing when the rows erased are exactly the count of their entries', async () => {
    const { added, report } = await finish({ a: ERASURE, b: ERASURE, c: OTHER }, [entry('2'), entry('1', OTHER, 'entry-2')]);
    expect(added).toEqual([]);
    expect(report).toEqual({ erasedRows: 3, erasureEntries: 2 });
  });

  it('names each row of an erasure that no entry records', async () => {
    const { added } = await finish({ a: ERASURE, b: ERASURE }, [entry('1', OTHER)]);
    const detail = `erased under erasure ${ERASURE}, which no audit_erasure entry records`;
    expect(added).toEqual([
      { kind: 'row_erased_unaccounted', row: 'a', detail },
      { kind: 'row_erased_unaccounted', row: 'b', detail },
      {
        kind: 'row_erased_unaccounted',
        row: 'entry-1',
        detail: `0 rows carry the marker of erasure ${OTHER}, whose audit_erasure entry counts 1: an erased row was written back or removed`,
      },
    ]);
  });

  it('names each row of an erasure with more rows than its entry counts, and with fewer', async () => {
    const more = await finish({ a: ERASURE, b: ERASURE }, [entry('1')]);
    expect(more.added).toEqual(
      ['a', 'b'].map((row) => ({
        kind: 'row_erased_unaccounted',
        row,
        detail: `one of 2 rows erased under erasure ${ERASURE}, whose audit_erasure entry counts 1`,
      })),
    );
    const fewer = await finish({ a: ERASURE }, [entry('2')]);
    expect(fewer.added).toEqual([
      {
        kind: 'row_erased_unaccounted',
        row: 'a',
        detail: `one of 1 rows erased under erasure ${ERASURE}, whose audit_erasure entry counts 2`,
      },
    ]);
  });

  it('adds up the counts of two entries of one erasure', async () => {
    expect((await finish({ a: ERASURE, b: ERASURE, c: ERASURE }, [entry('1'), entry('2', ERASURE, 'entry-2')])).added).toEqual([]);
  });

  it('does not name an erasure short of rows when only some seals were judged, but one with too many', async () => {
    expect((await finish({ a: ERASURE }, [entry('2')], [], { whole: false })).added).toEqual([]);
    expect((await finish({ a: ERASURE, b: ERASURE }, [entry('1')], [], { whole: false })).added).toHaveLength(2);
  });

  it('counts no forged entry, and no entry without an erasure id', async () => {
    const { added, report } = await finish({ a: ERASURE }, [entry('1', ERASURE, 'forged-1'), entry(null, null, 'entry-2')], [], {
      forged: new Set(['forged-1']),
    });
    expect(report.erasureEntries).toBe(1);
    expect(added).toEqual([
      { kind: 'row_erased_unaccounted', row: 'a', detail: `erased under erasure ${ERASURE}, which no audit_erasure entry records` },
    ]);
  });

  it('takes no count from an entry without an erasure id', async () => {
    const { added, report } = await finish({ a: ERASURE }, [entry('1'), entry('3', null, 'entry-2')]);
    expect(added).toEqual([]);
    expect(report.erasureEntries).toBe(2);
  });

  it.each([['-1'], ['1.0'], ['1e0'], [' 1'], ['1 '], ['0x1'], ['1234567890123456'], [null], ['']])(
    'takes a count that is not a whole number of at most 15 digits (%p) as 0',
    async (count) => {
      const { added } = await finish({ a: ERASURE }, [entry(count)]);
      expect(added).toEqual([
        {
          kind: 'row_erased_unaccounted',
          row: 'a',
          detail: `one of 1 rows erased under erasure ${ERASURE}, whose audit_erasure entry counts 0`,
        },
      ]);
    },
  );

  it('takes a count of up to 15 digits', async () => {
    const { added } = await finish({ a: ERASURE }, [entry('000000000000001')]);
    expect(added).toEqual([]);
  });
});

describe('PersonalChecks.finish: erasures the retention checkpoints carried forward', () => {
  it('adds the retired rows and entries of each checkpoint to the count, and reports them', async () => {
    const checkpoints = [carried({ [ERASURE]: 1 }), carried({ [ERASURE]: 1, [OTHER]: 2 }, { [OTHER]: { rows: 2, subject: null } })];
    const { added, report } = await finish({ a: ERASURE }, [entry('3')], checkpoints);
    expect(added).toEqual([]);
    expect(report).toEqual({ erasedRows: 1, erasureEntries: 1, retiredRows: 4, retiredEntries: 1 });
  });

  it('says how many rows were retired when naming an erasure that does not add up', async () => {
    const { added } = await finish({ a: ERASURE }, [entry('5')], [carried({ [ERASURE]: 2 })]);
    expect(added).toEqual([
      {
        kind: 'row_erased_unaccounted',
        row: 'a',
        detail: `one of 1 rows erased under erasure ${ERASURE} (and 2 retired), whose audit_erasure entry counts 5`,
      },
    ]);
    const unrecorded = await finish({ a: ERASURE }, [], [carried({ [ERASURE]: 2 })]);
    expect(unrecorded.added).toEqual([
      {
        kind: 'row_erased_unaccounted',
        row: 'a',
        detail: `erased under erasure ${ERASURE} (and 2 retired), which no audit_erasure entry records`,
      },
    ]);
  });

  it('names the entry of an erasure whose rows are all gone, short of its count', async () => {
    const { added } = await finish({}, [entry('3')], [carried({ [ERASURE]: 1 })]);
    expect(added).toEqual([
      {
        kind: 'row_erased_unaccounted',
        row: 'entry-1',
        detail: `1 rows carry the marker of erasure ${ERASURE} (and 1 retired), whose audit_erasure entry counts 3: an erased row was written back or removed`,
      },
    ]);
  });

  it('names the entry of an erasure with more rows retired than it counts, none left', async () => {
    const { added } = await finish({}, [entry('2')], [carried({ [ERASURE]: 3 })]);
    expect(added).toEqual([
      {
        kind: 'row_erased_unaccounted',
        row: 'entry-1',
        detail: `one of 0 rows erased under erasure ${ERASURE} (and 3 retired), whose audit_erasure entry counts 2`,
      },
    ]);
  });

  it('names an erasure whose rows and entry were all retired and do not add up, with no row to name', async () => {
    const { added } = await finish({}, [], [carried({ [ERASURE]: 3 }, { [ERASURE]: { rows: 2, subject: 'u-1' } })]);
    expect(added).toEqual([
      {
        kind: 'row_erased_unaccounted',
        detail: `3 rows erased under erasure ${ERASURE}, all retired, whose retired audit_erasure entry counts 2`,
      },
    ]);
  });

  it('passes an erasure whose rows and entry were all retired and add up', async () => {
    const { added } = await finish({}, [], [carried({ [ERASURE]: 2 }, { [ERASURE]: { rows: 2, subject: null } })]);
    expect(added).toEqual([]);
  });

  it.each([
    ['a checkpoint from before erasures were carried', null],
    ['a checkpoint whose erasures were changed by hand', '{"erased":'],
  ])('does not name an erasure short of rows while %s is in the chain', async (_what, checkpoint) => {
    expect((await finish({ a: ERASURE }, [entry('2')], [carried({}), checkpoint])).added).toEqual([]);
    expect((await finish({ a: ERASURE, b: ERASURE }, [entry('1')], [checkpoint])).added).toHaveLength(2);
  });

  it('ignores carried counts that are not numbers, and reads a checkpoint without one of its lists', async () => {
    const checkpoints = [
      carried({ [ERASURE]: '5' }, { [ERASURE]: { rows: '9' } }),
      JSON.stringify({ erased: { [ERASURE]: 1 } }),
      JSON.stringify({ entries: { [ERASURE]: { rows: 1 } } }),
      JSON.stringify({ entries: { [OTHER]: null } }),
    ];
    const { added, report } = await finish({ a: ERASURE }, [entry('1')], checkpoints);
    expect(added).toEqual([]);
    expect(report).toEqual({ erasedRows: 1, erasureEntries: 1, retiredRows: 1, retiredEntries: 1 });
  });
});

describe('erasureLine: the erasure line of audit-verify', () => {
  it('states the rows and entries, and what retention carried forward only when it carried something', () => {
    expect(erasureLine({ erasedRows: 3, erasureEntries: 1 })).toBe('erasure: 3 rows erased under 1 erasure entries');
    expect(erasureLine({ erasedRows: 3, erasureEntries: 1, retiredRows: 0, retiredEntries: 0 })).toBe(
      'erasure: 3 rows erased under 1 erasure entries',
    );
    expect(erasureLine({ erasedRows: 3, erasureEntries: 1, retiredRows: 2 })).toBe(
      'erasure: 3 rows erased under 1 erasure entries (and 2 erased rows retired)',
    );
    expect(erasureLine({ erasedRows: 0, erasureEntries: 0, retiredEntries: 4 })).toBe(
      'erasure: 0 rows erased under 0 erasure entries (and 4 erasure entries retired)',
    );
    expect(erasureLine({ erasedRows: 1, erasureEntries: 2, retiredRows: 5, retiredEntries: 6 })).toBe(
      'erasure: 1 rows erased under 2 erasure entries (and 5 erased rows, 6 erasure entries retired)',
    );
  });

  it('says how many erasure entries were made under a pseudonym key not given, only when there are some, after the retired part', () => {
    expect(erasureLine({ erasedRows: 3, erasureEntries: 2, uncheckedEntries: 0 })).toBe('erasure: 3 rows erased under 2 erasure entries');
    expect(erasureLine({ erasedRows: 3, erasureEntries: 2, uncheckedEntries: 2 })).toBe(
      "erasure: 3 rows erased under 2 erasure entries; 2 erasure entries made under a pseudonym key not given, whose subjects' rows left with values are not looked for",
    );
    expect(erasureLine({ erasedRows: 3, erasureEntries: 2, retiredRows: 1, uncheckedEntries: 1 })).toBe(
      "erasure: 3 rows erased under 2 erasure entries (and 1 erased rows retired); 1 erasure entries made under a pseudonym key not given, whose subjects' rows left with values are not looked for",
    );
  });
});
