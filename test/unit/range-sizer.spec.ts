import { RangeSizer } from '../../lib/run/range-sizer';

describe('adaptive range size', () => {
  it('keeps rangeSize when targetRangeMs is 0', () => {
    const s = new RangeSizer({
      rangeSize: 1000,
      targetRangeMs: 0,
      minRangeSize: 10,
      maxRangeSize: 10_000,
    });
    s.observe(1000, 5000);
    expect(s.limit).toBe(1000);
  });

  it('grows ranges whose handlers are quick, at most doubling per step, up to maxRangeSize', () => {
    const s = new RangeSizer({
      rangeSize: 1000,
      targetRangeMs: 500,
      minRangeSize: 10,
      maxRangeSize: 10_000,
    });
    s.observe(1000, 50); // 0.05 ms an id: 10,000 ids would take 500 ms
    expect(s.limit).toBe(2000);
    for (let i = 0; i < 10; i++) s.observe(s.limit, s.limit * 0.05);
    expect(s.limit).toBe(10_000);
  });

  it('halves after a hold and grows back, at most doubling per range that ends quickly; a fixed size stays', () => {
    const s = new RangeSizer({
      rangeSize: 1000,
      targetRangeMs: 500,
      minRangeSize: 300,
      maxRangeSize: 10_000,
    });
    for (let i = 0; i < 10; i++) s.observe(s.limit, s.limit * 0.05);
    expect(s.limit).toBe(10_000);
    s.backOff();
    expect(s.limit).toBe(5000);
    s.backOff();
    s.backOff();
    s.backOff();
    s.backOff();
    expect(s.limit).toBe(313);
    s.backOff();
    expect(s.limit).toBe(300);
    // Ranges sent before the hold that end during it do not grow it back.
    s.observe(s.limit, s.limit * 0.05);
    expect(s.limit).toBe(300);
    s.resume();
    s.observe(s.limit, s.limit * 0.05);
    expect(s.limit).toBe(600);
    for (let i = 0; i < 10; i++) s.observe(s.limit, s.limit * 0.05);
    expect(s.limit).toBe(10_000);
    const fixed = new RangeSizer({
      rangeSize: 1000,
      targetRangeMs: 0,
      minRangeSize: 10,
      maxRangeSize: 10_000,
    });
    fixed.backOff();
    expect(fixed.limit).toBe(1000);
  });

  it('shrinks ranges whose handlers are slow, down to minRangeSize', () => {
    const s = new RangeSizer({
      rangeSize: 1000,
      targetRangeMs: 100,
      minRangeSize: 50,
      maxRangeSize: 10_000,
    });
    for (let i = 0; i < 20; i++) s.observe(s.limit, s.limit * 10); // 10 ms an id: 10 ids per 100 ms
    expect(s.limit).toBe(50);
  });

  it('settles near the size that takes targetRangeMs', () => {
    const s = new RangeSizer({
      rangeSize: 100,
      targetRangeMs: 200,
      minRangeSize: 10,
      maxRangeSize: 100_000,
    });
    for (let i = 0; i < 30; i++) s.observe(s.limit, s.limit * 0.1);
    expect(s.limit).toBe(2000);
  });
});
