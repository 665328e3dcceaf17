//! The conformance suite on a three-primary Redis Cluster this test starts (and stops) itself.

use std::process::ExitCode;

use nadb_testkit::redis::RedisCluster;

fn main() -> ExitCode {
    let cluster = match RedisCluster::start(3) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot start a redis cluster: {e}");
            return ExitCode::FAILURE;
        }
    };
    let url = cluster.url();
    let code = nadb_testkit::harness_main("redis_cluster", move || {
        // Every case gets its own key root: the server is shared, and a sweep covers every
        // space under a root.
        let url = format!("{url}?prefix=t{:016x}", rand::random::<u64>());
        move || {
            let url = url.clone();
            async move { nadb_backend_redis::RedisBackend::open(&url).await }
        }
    });
    drop(cluster);
    code
}
