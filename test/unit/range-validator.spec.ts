import { InvalidRangeError } from '../../lib'
import { compareIds } from '../../lib/run/id-order'
import { toStoredRange } from '../../lib/run/range-validator'

describe('loader output', () => {
  it('takes both forms of the seed: ids, or a range object with a payload', () => {
    expect(toStoredRange('users', null, [1, 2, 3])).toEqual({ ids: [1, 2, 3], lastId: 3, prev: null })
    expect(toStoredRange('users', 3, { lastId: 10, idsRange: [4, 7], shard: 'eu' })).toEqual({ ids: [4, 7], lastId: 10, prev: 3, payload: { shard: 'eu' } })
    expect(toStoredRange('users', 3, { lastId: 10, from: 4 })).toEqual({ ids: [], lastId: 10, prev: 3, payload: { from: 4 } })
  })

  it.each([[[]], [null], [undefined], [{ lastId: null }], [{ lastId: undefined, idsRange: [] }]])('reads %p as "no more data"', value => {
    expect(toStoredRange('users', 5, value)).toBeNull()
  })

  it('turns bigint ids into decimal strings and orders integer strings numerically', () => {
    expect(toStoredRange('users', '9', [10n, 9007199254740993n])).toEqual({ ids: ['10', '9007199254740993'], lastId: '9007199254740993', prev: '9' })
    expect(compareIds('10', '9')).toBeGreaterThan(0)
    expect(compareIds(10, '9')).toBeGreaterThan(0)
    expect(compareIds('b', 'a')).toBeGreaterThan(0)
  })

  it('orders integer strings as numbers, whatever their length, sign or leading zeros', () => {
    const sorted = ['-12', '-3', '0', '007', '9', '10', '99', '100', '9007199254740993', '9007199254740994', '18446744073709551615']
    for (let i = 0; i < sorted.length; i++) {
      for (let j = 0; j < sorted.length; j++) {
        expect([sorted[i], sorted[j], Math.sign(compareIds(sorted[i], sorted[j]))]).toEqual([sorted[i], sorted[j], Math.sign(i - j)])
      }
    }
    expect(compareIds('10', '10')).toBe(0)
    expect(compareIds('7', '007')).toBe(0)
  })

  it.each([
    [[7, 6], /Job "users": the range loader returned ids that are not sorted ascending: 6 at index 1 comes after 7/],
    [[6, 6], /Job "users": the range loader returned the id 6 twice \(index 1\)/],
    [[5, 6], /Job "users": the range loader returned 5, which is not after the cursor 5/],
    ['1,2', /Job "users": the range loader returned '1,2', which is neither an array of ids nor a range object/],
    [[6, {}], /Job "users": the range loader returned an invalid id \{\} at index 1/],
    [[6, NaN], /invalid id NaN at index 1/],
    [{ idsRange: [6] }, /Job "users": the range object \{ idsRange: \[ 6 \] \} has ids but no lastId/],
    [{ lastId: 6, idsRange: [7] }, /lastId 6 is before its id 7/],
    [{ lastId: 4 }, /returned 4, which is not after the cursor 5/],
    [{ lastId: 9, idsRange: 'x' }, /neither an array of ids nor a range object/],
    [{ lastId: 9, big: 1n }, /payload "big" cannot travel to a worker as JSON/],
  ])('refuses %p with an error naming the job and the value', (value, message) => {
    let error: unknown
    try {
      toStoredRange('users', 5, value)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(InvalidRangeError)
    expect((error as InvalidRangeError).job).toBe('users')
    expect((error as Error).message).toMatch(message)
  })
})
