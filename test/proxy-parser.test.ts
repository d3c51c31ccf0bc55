// The response parser on its own, for what the real proxy cannot show from
// outside: how much work a slowly dribbled head costs.
import { afterEach, expect, it, vi } from 'vitest';
import { MAX_HEAD } from '../src/proxy/response-head.js';
import { Parsed, ResponseParser, type ResponseHead } from '../src/proxy/response-parser.js';

afterEach(() => {
  vi.restoreAllMocks();
});

it('reads a head dribbled one byte per read in linear time: the pieces are joined once, not on every read', () => {
  const pad = 'X-Pad: 0123456789abcdef\r\n'.repeat(Math.floor((MAX_HEAD - 100) / 25));
  const text = `HTTP/1.1 200 OK\r\n${pad}Content-Length: 2\r\n\r\nok`;
  expect(text.length).toBeGreaterThan(MAX_HEAD - 200);
  const heads: ResponseHead[] = [];
  let body = '';
  const parser = new ResponseParser();
  parser.expect({ onHead: (h) => heads.push(h), onBody: (b) => (body += b), onEnd: (b) => (body += b ?? '') }, false);
  const concat = vi.spyOn(Buffer, 'concat');
  const bytes = Buffer.from(text, 'latin1');
  let r = Parsed.More;
  for (let i = 0; i < bytes.length; i++) r = parser.execute(bytes.subarray(i, i + 1));
  expect(r).toBe(Parsed.Done);
  expect(heads).toHaveLength(1);
  expect(heads[0]!.headers.length / 2).toBe(pad.split('\r\n').length);
  expect(body).toBe('ok');
  expect(concat).toHaveBeenCalledTimes(1);
});

it('fails a bare LF at once instead of waiting for the rest of the head', () => {
  const parser = new ResponseParser();
  parser.expect({ onHead: () => {}, onBody: () => {}, onEnd: () => {} }, false);
  expect(parser.execute(Buffer.from('HTTP/1.1 200 OK\r\n'))).toBe(Parsed.More);
  expect(parser.execute(Buffer.from('X-A: 1\n'))).toBe(Parsed.Error);
  const split = new ResponseParser();
  split.expect({ onHead: () => {}, onBody: () => {}, onEnd: () => {} }, false);
  // A CR at the end of one read and its LF at the start of the next are fine.
  expect(split.execute(Buffer.from('HTTP/1.1 204 No Content\r'))).toBe(Parsed.More);
  expect(split.execute(Buffer.from('\nX-A: 1\r\n\r'))).toBe(Parsed.More);
  expect(split.execute(Buffer.from('\n'))).toBe(Parsed.Done);
});
