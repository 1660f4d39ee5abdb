import { type ID, InvalidRangeError } from '../../lib';
import { compareIds, idOrder, type IdOrder } from '../../lib/run/id-order';
import { toStoredRange } from '../../lib/run/range-validator';

describe('loader output', () => {
  it('takes both forms of the seed: ids, or a range object with a payload', () => {
    expect(toStoredRange('users', null, [1, 2, 3])).toEqual({
      ids: [1, 2, 3],
      lastId: 3,
      prev: null,
    });
    expect(
      toStoredRange('users', 3, { lastId: 10, idsRange: [4, 7], shard: 'eu' }),
    ).toEqual({ ids: [4, 7], lastId: 10, prev: 3, payload: { shard: 'eu' } });
    expect(toStoredRange('users', 3, { lastId: 10, from: 4 })).toEqual({
      ids: [],
      lastId: 10,
      prev: 3,
      payload: { from: 4 },
    });
  });

  it.each([
    [[]],
    [null],
    [undefined],
    [{ lastId: null }],
    [{ lastId: undefined, idsRange: [] }],
  ])('reads %p as "no more data"', (value) => {
    expect(toStoredRange('users', 5, value)).toBeNull();
  });

  it('turns bigint ids into decimal strings and orders integer strings numerically', () => {
    expect(toStoredRange('users', '9', [10n, 9007199254740993n])).toEqual({
      ids: ['10', '9007199254740993'],
      lastId: '9007199254740993',
      prev: '9',
    });
    expect(compareIds('10', '9')).toBeGreaterThan(0);
    expect(compareIds(10, '9')).toBeGreaterThan(0);
    expect(compareIds('b', 'a')).toBeGreaterThan(0);
  });

  it('orders integer strings as numbers, whatever their length, sign or leading zeros', () => {
    const sorted = [
      '-12',
      '-3',
      '0',
      '007',
      '9',
      '10',
      '99',
      '100',
      '9007199254740993',
      '9007199254740994',
      '18446744073709551615',
    ];
    for (let i = 0; i < sorted.length; i++) {
      for (let j = 0; j < sorted.length; j++) {
        expect([
          sorted[i],
          sorted[j],
          Math.sign(compareIds(sorted[i], sorted[j])),
        ]).toEqual([sorted[i], sorted[j], Math.sign(i - j)]);
      }
    }
    expect(compareIds('10', '10')).toBe(0);
    expect(compareIds('7', '007')).toBe(0);
  });

  it.each([
    [
      [7, 6],
      /Job "users": the range loader returned ids that are not sorted ascending: 6 at index 1 comes after 7/,
    ],
    [
      [6, 6],
      /Job "users": the range loader returned the id 6 twice \(index 1\)/,
    ],
    [
      [5, 6],
      /Job "users": the range loader returned 5, which is not after the cursor 5/,
    ],
    [
      '1,2',
      /Job "users": the range loader returned '1,2', which is neither an array of ids nor a range object/,
    ],
    [
      [6, {}],
      /Job "users": the range loader returned an invalid id \{\} at index 1/,
    ],
    [[6, NaN], /invalid id NaN at index 1/],
    [
      { idsRange: [6] },
      /Job "users": the range object \{ idsRange: \[ 6 \] \} has ids but no lastId/,
    ],
    [{ lastId: 6, idsRange: [7] }, /lastId 6 is before its id 7/],
    [{ lastId: 4 }, /returned 4, which is not after the cursor 5/],
    [
      { lastId: 9, idsRange: 'x' },
      /neither an array of ids nor a range object/,
    ],
    [{ lastId: 9, big: 1n }, /payload "big" cannot travel to a worker as JSON/],
  ])(
    'refuses %p with an error naming the job and the value',
    (value, message) => {
      let error: unknown;
      try {
        toStoredRange('users', 5, value);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InvalidRangeError);
      expect((error as InvalidRangeError).job).toBe('users');
      expect((error as Error).message).toMatch(message);
    },
  );
});

describe('idOrder', () => {
  const refusal = (
    order: IdOrder,
    cursor: ID | null,
    value: unknown,
  ): string => {
    try {
      toStoredRange('users', cursor, value, order);
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidRangeError);
      return (e as Error).message;
    }
    return 'accepted';
  };

  it("'text' takes a text key in its byte-wise order, digits included", () => {
    expect(refusal(idOrder('text'), null, ['1', '10', '2'])).toBe('accepted');
    expect(refusal(idOrder('text'), '007', ['7', 'a'])).toBe('accepted');
    expect(refusal(idOrder('text'), null, ['007', '7'])).toBe('accepted');
    expect(refusal(idOrder('text'), null, ['b', 'a'])).toMatch(
      /not sorted ascending: 'a' at index 1 comes after 'b'/,
    );
    expect(refusal(idOrder('text'), null, ['a', 7])).toMatch(
      /returned 7 at index 1: not a string, and idOrder 'text' orders string ids/,
    );
  });

  it("'binary' orders by code point: characters above U+FFFF after U+E000..U+FFFF, unlike code units", () => {
    const bmp = '\uFFFD';
    const astral = '\u{1F600}';
    expect(refusal(idOrder('binary'), null, [bmp, astral])).toBe('accepted');
    expect(refusal(idOrder('text'), null, [bmp, astral])).toMatch(
      /not sorted ascending/,
    );
    expect(
      refusal(idOrder('binary'), null, ['a', 'b', bmp, astral, `${astral}a`]),
    ).toBe('accepted');
  });

  it("'numeric' (the default) refuses mixed kinds, non-integers and unsafe integers, naming the rule", () => {
    const numeric = idOrder();
    expect(refusal(numeric, null, [1, 'u2', 3])).toMatch(
      /mixes the integer id 1 and the text id 'u2'; idOrder 'numeric' orders integers/,
    );
    expect(refusal(numeric, '10', ['1a', '9'])).toMatch(
      /mixes the integer id '(9|10)' and the text id '1a'/,
    );
    // The literal loses precision on purpose: that is what the check must catch.
    // eslint-disable-next-line no-loss-of-precision
    expect(refusal(numeric, null, [9007199254740993])).toMatch(
      /9007199254740992 at index 0: a number beyond Number.MAX_SAFE_INTEGER/,
    );
    expect(refusal(numeric, null, [1.5])).toMatch(
      /1.5 at index 0: a number that is not an integer/,
    );
    expect(refusal(numeric, 5, { lastId: 'x' })).toMatch(
      /mixes the integer id 5 and the text id 'x'/,
    );
    // Integers of both kinds (bigint columns arrive as strings) and text keys alone stay fine.
    expect(refusal(numeric, 9, ['10', 11, '9007199254740993'])).toBe(
      'accepted',
    );
    expect(refusal(numeric, 'a', ['b', 'c'])).toBe('accepted');
  });

  it('takes a comparator for any other order', () => {
    const descending = idOrder((a, b) => Number(b) - Number(a));
    expect(refusal(descending, 100, [99, 50, 1])).toBe('accepted');
    expect(refusal(descending, 100, [1, 50])).toMatch(
      /not after the cursor 100|not sorted/,
    );
  });
});
