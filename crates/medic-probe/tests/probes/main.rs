//! The probes against real servers on 127.0.0.1 and real processes: one test
//! binary, one module per probe kind.

mod exec;
mod http;
mod tcp;
mod tls;
mod util;
