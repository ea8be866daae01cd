//! Attach points: tracepoints, uprobes, USDT, perf events.
