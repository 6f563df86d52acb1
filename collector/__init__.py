"""collector: OTLP ingest (HTTP, gRPC, files) into the raw DuckDB tables."""
