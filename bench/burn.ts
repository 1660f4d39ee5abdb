import { createHash } from 'node:crypto';

/** SHA-256 over a buffer, `rounds` times: a stand-in for CPU-bound work per id. */
export function burn(rounds: number): string {
  let h = Buffer.from('x');
  for (let i = 0; i < rounds; i++) h = createHash('sha256').update(h).digest();
  return h.toString('hex');
}
