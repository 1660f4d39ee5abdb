import Module from 'node:module';

/**
 * BENCH_OTEL picks what OpenTelemetry the bench app has, in the primary and
 * its workers alike: `off` hides `@opentelemetry/api` (as in an app without
 * it), unset leaves the API with no SDK registered (the default app), `sdk`
 * registers a tracer provider whose exporter drops every span, so spans are
 * recorded and batched as in production but nothing is sent.
 */
const mode = process.env.BENCH_OTEL;
if (mode === 'off') {
  const resolver = Module as unknown as {
    _resolveFilename(request: string, ...rest: unknown[]): string;
  };
  const resolve = resolver._resolveFilename.bind(resolver);
  resolver._resolveFilename = (request, ...rest) => {
    if (request === '@opentelemetry/api')
      throw Object.assign(new Error(`Cannot find module '${request}'`), {
        code: 'MODULE_NOT_FOUND',
      });
    return resolve(request, ...rest);
  };
} else if (mode === 'sdk') {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { trace } =
    require('@opentelemetry/api') as typeof import('@opentelemetry/api');
  const { BasicTracerProvider, BatchSpanProcessor } =
    require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const dropping = {
    export: (_spans: unknown[], done: (r: { code: number }) => void) =>
      done({ code: 0 }),
    shutdown: () => Promise.resolve(),
  };
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({
      spanProcessors: [new BatchSpanProcessor(dropping)],
    }),
  );
}
