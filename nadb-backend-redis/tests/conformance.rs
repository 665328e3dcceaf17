//! The conformance suite on a standalone Redis server this test starts (and stops) itself.

use std::process::ExitCode;

use nadb_testkit::redis::RedisServer;

fn main() -> ExitCode {
    let server = match RedisServer::start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot start redis-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let url = server.url();
    let code = nadb_testkit::harness_main("redis", move || {
        // Every case gets its own key root: the server is shared, and a sweep covers every
        // space under a root.
        let url = format!("{url}?prefix=t{:016x}", rand::random::<u64>());
        move || {
            let url = url.clone();
            async move { nadb_backend_redis::RedisBackend::open(&url).await }
        }
    });
    drop(server);
    code
}
