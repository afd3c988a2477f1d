// One span, one log record and one metric (a counter), each exported once by the OpenTelemetry JS
// SDK's OTLP exporter of the protocol argv[2] names ("grpc" or "proto"), with its default
// settings: the endpoint comes from OTEL_EXPORTER_OTLP_ENDPOINT, as an application's would.
// Prints "exported" once the providers shut down (every batch sent); exits 1 when an export
// failed. Run by tests/integration/test_otlp_grpc.py (test_opentelemetry_js_sdk).
const proto = process.argv[2];
const { NodeTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-node');
const { LoggerProvider, BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs');
const { MeterProvider, PeriodicExportingMetricReader } = require('@opentelemetry/sdk-metrics');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { OTLPTraceExporter } = require(`@opentelemetry/exporter-trace-otlp-${proto}`);
const { OTLPLogExporter } = require(`@opentelemetry/exporter-logs-otlp-${proto}`);
const { OTLPMetricExporter } = require(`@opentelemetry/exporter-metrics-otlp-${proto}`);

const resource = resourceFromAttributes({ 'service.name': 'checkout-' + proto, 'deployment.environment': 'test' });
const tracer = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())] });
const logger = new LoggerProvider({ resource, processors: [new BatchLogRecordProcessor({ exporter: new OTLPLogExporter() })] });
const reader = new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter(), exportIntervalMillis: 60000 });
const meter = new MeterProvider({ resource, readers: [reader] });

const span = tracer.getTracer('demo').startSpan('POST /pay', { attributes: { 'order.id': 'o-42' } });
span.end();
logger.getLogger('demo').emit({ severityText: 'INFO', body: 'paid ' + proto, attributes: { 'order.id': 'o-42' } });
meter.getMeter('demo').createCounter('orders').add(3, { route: '/pay' });

Promise.all([tracer.shutdown(), logger.shutdown(), meter.shutdown()])
  .then(() => console.log('exported'), (e) => { console.error('export failed', e); process.exit(1); });
