//! The eBPF runtime: the bpf()/perf_event_open() choke point, instruction builder, maps, ring buffer, program load.
