import { endsAndChains, savepointCommand } from './savepoint-sql';

describe('savepointCommand', () => {
  it('reads SAVEPOINT, ROLLBACK TO and RELEASE in any case, after white space and comments', () => {
    expect(savepointCommand('SAVEPOINT s1')).toEqual({ kind: 'savepoint', name: 's1' });
    expect(savepointCommand('  /* undo */ -- here\n rollback work to savepoint S1 ;')).toEqual({ kind: 'rollback-to', name: 's1' });
    expect(savepointCommand('Rollback To s1')).toEqual({ kind: 'rollback-to', name: 's1' });
    expect(savepointCommand('release "My ""Point"""')).toEqual({ kind: 'release', name: 'My "Point"' });
    expect(savepointCommand('RELEASE SAVEPOINT x')).toEqual({ kind: 'release', name: 'x' });
  });

  it('reads nothing else, a multi-statement string included', () => {
    expect(savepointCommand('ROLLBACK')).toBeUndefined();
    expect(savepointCommand('COMMIT')).toBeUndefined();
    expect(savepointCommand('SAVEPOINT a; INSERT INTO t VALUES (1)')).toBeUndefined();
    expect(savepointCommand("SELECT 'SAVEPOINT a'")).toBeUndefined();
    expect(savepointCommand('/* unclosed SAVEPOINT a')).toBeUndefined();
  });
});

describe('endsAndChains', () => {
  it('reads COMMIT AND CHAIN and ROLLBACK AND CHAIN, in any case, and nothing else', () => {
    expect(endsAndChains(' commit and chain;')).toBe(true);
    expect(endsAndChains('/* next */ ROLLBACK WORK AND CHAIN')).toBe(true);
    expect(endsAndChains('END TRANSACTION AND CHAIN')).toBe(true);
    expect(endsAndChains('COMMIT')).toBe(false);
    expect(endsAndChains('COMMIT AND NO CHAIN')).toBe(false);
    expect(endsAndChains('ROLLBACK TO SAVEPOINT chain')).toBe(false);
  });
});

describe('a query with a long run of blanks that does not end it', () => {
  // Every query on a DataSource with audited entities is read here: a text constant padded with
  // blanks must cost a pass over the text, not a backtracking search (a trailing-`;` pattern took
  // 2 s for 2,000 blanks and grew with their cube).
  const padded = `SELECT length('${' '.repeat(50_000)}x')`;

  it('is read in one pass by both readers', () => {
    expect(savepointCommand(padded)).toBeUndefined();
    expect(endsAndChains(padded)).toBe(false);
    expect(savepointCommand(`SAVEPOINT s1${' '.repeat(50_000)};${' '.repeat(50_000)}`)).toEqual({ kind: 'savepoint', name: 's1' });
    expect(endsAndChains(`commit and chain${' '.repeat(50_000)};`)).toBe(true);
  }, 5_000);
});
