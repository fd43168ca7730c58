"""The SDK edge: OFREP, `/api/v1/evaluate`, the GrowthBook payload and the events endpoint,
with the compiled snapshots, rate limits, exposure buffer and usage recording behind them.

Management APIs and pages never import this package; it imports the pure flag engine and
the models it reads.
"""
