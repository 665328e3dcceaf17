//! Connecting: URLs, the standalone and cluster connections, and what a Redis error means.

use std::time::Duration;

use nadb_core::error::redact_url;
use nadb_core::{Error, Result};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, ServerErrorKind, Value};

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one command may wait for its reply. Generous: a batch with 64 MiB values is one
/// command, and a paused server (`CLIENT PAUSE`, a failover) should delay a write, not fail it.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where to connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// `redis://host:port/db`, as the redis crate parses it.
    Standalone(String),
    /// Seed nodes of a cluster, each `redis://[auth@]host:port`.
    Cluster(Vec<String>),
}

impl Target {
    /// Parses the part of a URL after `scheme://`; `url` is the whole URL for messages.
    pub(crate) fn parse(scheme: &str, rest: &str, url: &str) -> Result<Target> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: redact_url(url),
            reason: reason.to_string(),
        };
        let (auth, hosts) = match rest.rsplit_once('@') {
            Some((auth, hosts)) => (Some(auth), hosts),
            None => (None, rest),
        };
        let auth = auth.map_or_else(String::new, |a| format!("{a}@"));
        match scheme {
            "redis" => {
                let host = hosts.split(['/', '?']).next().unwrap_or("");
                if host.is_empty() {
                    return Err(invalid(
                        "redis:// needs a host, e.g. redis://127.0.0.1:6379/0",
                    ));
                }
                let url = format!("redis://{rest}");
                redis::parse_redis_url(&url).ok_or_else(|| invalid("not a valid redis URL"))?;
                Ok(Target::Standalone(url))
            }
            "redis+cluster" => {
                let hosts = hosts.strip_suffix('/').unwrap_or(hosts);
                if hosts.contains(['/', '?']) {
                    return Err(invalid(
                        "a cluster has only database 0: redis+cluster://h1:p1,h2:p2 takes no path",
                    ));
                }
                let nodes: Vec<String> = hosts
                    .split(',')
                    .map(|h| format!("redis://{auth}{}", h.trim()))
                    .collect();
                if hosts.trim().is_empty() || hosts.split(',').any(|h| h.trim().is_empty()) {
                    return Err(invalid(
                        "redis+cluster:// needs host:port seed nodes separated by commas",
                    ));
                }
                for n in &nodes {
                    redis::parse_redis_url(n).ok_or_else(|| invalid("not a valid node address"))?;
                }
                Ok(Target::Cluster(nodes))
            }
            _ => Err(invalid("unknown redis scheme")),
        }
    }
}

/// A connection to a server or a cluster; cheap to clone, reconnects by itself.
#[derive(Clone)]
pub(crate) enum Conn {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    /// Connects, failing with a temporary backend error naming the (redacted) URL.
    pub(crate) async fn open(target: &Target, url: &str) -> Result<Conn> {
        let unreachable = |e: RedisError| {
            Error::backend(
                "redis",
                true,
                format!("cannot connect to {}: {e}", redact_url(url)),
            )
        };
        match target {
            Target::Standalone(u) => {
                let client = redis::Client::open(u.as_str()).map_err(|e| Error::InvalidUrl {
                    url: redact_url(url),
                    reason: e.to_string(),
                })?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_number_of_retries(2);
                let mut conn = ConnectionManager::new_with_config(client, config)
                    .await
                    .map_err(unreachable)?;
                // The manager may connect lazily; a PING proves the server answers.
                redis::cmd("PING")
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(unreachable)?;
                Ok(Conn::Standalone(conn))
            }
            Target::Cluster(nodes) => {
                // The cluster client retries redirections and TRYAGAIN itself. While a slot
                // migrates, every multi-key call on it answers TRYAGAIN until the move ends;
                // the waits (up to 1 s each, about 10 s in all) outlast a typical slot move,
                // and a longer outage reaches the caller as a temporary error instead of
                // blocking a call for minutes. A write the client sends again after it took
                // effect is recognised: an unchecked batch by the apply script, a checked one
                // with a put by the store (the put's own version is stored). A checked batch
                // of deletes alone cannot be told from a conflict: it comes back as one.
                let client = ClusterClientBuilder::new(nodes.clone())
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .retries(16)
                    .min_retry_wait(50)
                    .max_retry_wait(1000)
                    .retry_wait_formula(10, 2)
                    .build()
                    .map_err(|e| Error::InvalidUrl {
                        url: redact_url(url),
                        reason: e.to_string(),
                    })?;
                let conn = client.get_async_connection().await.map_err(unreachable)?;
                Ok(Conn::Cluster(conn))
            }
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Standalone(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Standalone(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Standalone(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Whether retrying may help: lost connections, timeouts, a cluster resharding or failing
/// over, a server loading its data or busy with a script.
pub(crate) fn is_temporary(e: &RedisError) -> bool {
    if e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_cluster_error()
    {
        return true;
    }
    matches!(
        e.kind(),
        ErrorKind::ClusterConnectionNotFound
            | ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
            )
    ) || matches!(e.code(), Some("BUSY" | "NOREPLICAS" | "LOADING"))
        // A script that touches a key of a slot being migrated away: the slot settles soon.
        || e.to_string().contains("non local key")
}

/// A Redis error as a backend error.
pub(crate) fn redis_error(e: RedisError) -> Error {
    Error::backend("redis", is_temporary(&e), e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<Target> {
        let (scheme, rest) = url.split_once("://").unwrap();
        Target::parse(scheme, rest, url)
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse("redis://127.0.0.1:6379/2").unwrap(),
            Target::Standalone("redis://127.0.0.1:6379/2".into())
        );
        assert_eq!(
            parse("redis+cluster://u:pw@a:1,b:2/").unwrap(),
            Target::Cluster(vec!["redis://u:pw@a:1".into(), "redis://u:pw@b:2".into()])
        );
        for bad in [
            "redis://",
            "redis:///0",
            "redis+cluster://",
            "redis+cluster://a:1,,b:2",
            "redis+cluster://a:1/3",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidUrl { .. }), "{bad}: {e}");
        }
    }

    #[test]
    fn invalid_url_hides_the_password() {
        let e = parse("redis+cluster://user:hunter2@a:1,").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
