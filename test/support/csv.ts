/**
 * Splits RFC 4180 text into records of fields (quoted fields may hold commas, quotes and line
 * breaks): how the tests read an export back.
 *
 * @example
 * parseCsv('a,"b,""c"""\r\n'); // [['a', 'b,"c"']]
 */
export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  const field = /("(?:[^"]|"")*"|[^,\r\n]*)(,|\r\n|$)/gy;
  const record: string[] = [];
  for (let match = field.exec(text); match && match[0] !== ''; match = field.exec(text)) {
    record.push(match[1].startsWith('"') ? match[1].slice(1, -1).replaceAll('""', '"') : match[1]);
    if (match[2] !== ',') records.push(record.splice(0));
  }
  return records;
}
