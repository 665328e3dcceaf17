//! The `nadb` binary end to end: every command on fs and SQLite stores in temporary
//! directories, exit codes, JSON output, stdin input, bad input.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn text(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("stdout is UTF-8")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}): {:?}",
                String::from_utf8_lossy(&self.stdout)
            )
        })
    }

    /// Asserts the exit code, and for a failure exactly one line on stderr.
    fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code,
            code,
            "exit code; stderr: {}; stdout: {:?}",
            self.stderr,
            String::from_utf8_lossy(&self.stdout)
        );
        if code == 0 {
            assert!(self.stderr.is_empty(), "stderr on success: {}", self.stderr);
        } else {
            assert_eq!(
                self.stderr.lines().count(),
                1,
                "one stderr line: {:?}",
                self.stderr
            );
            assert!(self.stderr.starts_with("nadb: "), "{}", self.stderr);
        }
        self
    }
}

/// Runs the binary in `cwd` (a temporary directory, so nothing lands in the repository).
fn nadb_in(cwd: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nadb"))
        .args(args)
        .env_remove("NADB_LOG")
        .current_dir(cwd)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nadb");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(input).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait for nadb");
    Run {
        code: out.status.code().expect("exit code"),
        stdout: out.stdout,
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn fs_url(&self, name: &str) -> String {
        format!("fs://{}", self.dir.path().join(name).display())
    }

    fn sqlite_url(&self, name: &str) -> String {
        format!("sqlite://{}", self.dir.path().join(name).display())
    }

    fn run(&self, url: &str, args: &[&str]) -> Run {
        self.run_stdin(url, args, None)
    }

    fn run_stdin(&self, url: &str, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let mut all = vec!["--url", url];
        all.extend_from_slice(args);
        nadb_in(self.dir.path(), &all, stdin)
    }
}

fn keys_of(v: &Value) -> Vec<String> {
    v["keys"]
        .as_array()
        .expect("keys array")
        .iter()
        .map(|k| k.as_str().expect("key string").to_string())
        .collect()
}

/// Every command on one store, checked by its output.
fn every_command(env: &Env, url: &str, other_url: &str) {
    // set: from an argument, from stdin with `-`, from stdin with no value.
    let r = env.run(
        url,
        &[
            "set", "a", "hello", "--tag", "x", "--tag", "y", "--ttl", "1h",
        ],
    );
    assert!(r.expect(0).stdout.is_empty());
    let binary = [0u8, 1, 0xff, 0xfe, b'\n'];
    env.run_stdin(url, &["set", "bin", "-"], Some(&binary))
        .expect(0);
    env.run_stdin(url, &["set", "b"], Some(b"from stdin"))
        .expect(0);
    let r = env
        .run(url, &["--json", "set", "c", "see", "--tag", "x"])
        .expect(0);
    assert_eq!(r.json()["bytes"], 3);

    // get: raw bytes, JSON text or base64, missing key.
    assert_eq!(env.run(url, &["get", "a"]).expect(0).stdout, b"hello");
    assert_eq!(env.run(url, &["get", "bin"]).expect(0).stdout, binary);
    assert_eq!(env.run(url, &["get", "b"]).expect(0).stdout, b"from stdin");
    let j = env.run(url, &["--json", "get", "bin"]).expect(0).json();
    assert_eq!(j["value_b64"], "AAH//go=");
    assert!(j.get("value").is_none());
    assert_eq!(
        env.run(url, &["--json", "get", "a"]).expect(0).json()["value"],
        "hello"
    );
    let r = env.run(url, &["get", "missing"]).expect(1);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("not found"), "{}", r.stderr);
    let j = env.run(url, &["get", "missing", "--json"]).expect(1).json();
    assert_eq!(j["error"]["code"], 1);
    assert_eq!(j["error"]["kind"], "not_found");

    // exists.
    assert_eq!(env.run(url, &["exists", "a"]).expect(0).text(), "true\n");
    assert_eq!(
        env.run(url, &["exists", "nope"]).expect(1).text(),
        "false\n"
    );
    assert_eq!(
        env.run(url, &["--json", "exists", "nope"]).expect(1).json()["exists"],
        false
    );

    // meta.
    let m = env.run(url, &["--json", "meta", "a"]).expect(0).json();
    assert_eq!(m["value_len"], 5);
    assert_eq!(m["tags"], serde_json::json!(["x", "y"]));
    let expires = m["expires_at"].as_u64().expect("expires_at");
    let created = m["created_at"].as_u64().expect("created_at");
    assert!(expires >= created + 3_599_000 && expires <= created + 3_600_000 + 1000);
    assert!(m["ttl_ms"].as_u64().expect("ttl_ms") > 3_500_000);
    assert_eq!(m["codec"], "raw");
    assert_eq!(
        env.run(url, &["--json", "meta", "b"]).expect(0).json()["expires_at"],
        Value::Null
    );
    let text = env.run(url, &["meta", "a"]).expect(0).text();
    assert!(text.contains("tags:       x, y"), "{text}");
    env.run(url, &["meta", "nope"]).expect(1);

    // keys.
    assert_eq!(env.run(url, &["keys"]).expect(0).text(), "a\nb\nbin\nc\n");
    let j = env
        .run(url, &["--json", "keys", "--prefix", "b"])
        .expect(0)
        .json();
    assert_eq!(keys_of(&j), ["b", "bin"]);
    let j = env
        .run(url, &["--json", "keys", "--limit", "2"])
        .expect(0)
        .json();
    assert_eq!(keys_of(&j), ["a", "b"]);

    // tags and query.
    let j = env.run(url, &["--json", "tags"]).expect(0).json();
    assert_eq!(j["tags"], serde_json::json!({"x": 2, "y": 1}));
    assert_eq!(env.run(url, &["tags"]).expect(0).text(), "x\t2\ny\t1\n");
    let j = env
        .run(url, &["--json", "query", "--tag", "x", "--tag", "y"])
        .expect(0)
        .json();
    assert_eq!(keys_of(&j), ["a"]);
    let j = env
        .run(
            url,
            &["--json", "query", "--tag", "y", "--tag", "x", "--any"],
        )
        .expect(0)
        .json();
    assert_eq!(keys_of(&j), ["a", "c"]);
    assert_eq!(
        env.run(url, &["query", "--tag", "x"]).expect(0).text(),
        "a\nc\n"
    );

    // Another space is separate.
    env.run(
        url,
        &["--db", "app", "--namespace", "ns", "set", "o", "other"],
    )
    .expect(0);
    assert_eq!(
        env.run(url, &["--db", "app", "--namespace", "ns", "keys"])
            .expect(0)
            .text(),
        "o\n"
    );
    env.run(url, &["get", "o"]).expect(1);

    // stats and compact.
    let j = env.run(url, &["--json", "stats"]).expect(0).json();
    assert_eq!(j["stats"]["live_keys"], 4);
    assert_eq!(j["space"]["db"], "default");
    assert!(
        env.run(url, &["stats"])
            .expect(0)
            .text()
            .contains("live keys:          4")
    );
    assert_eq!(
        env.run(url, &["--json", "compact"]).expect(0).json()["compacted"],
        true
    );
    assert!(
        env.run(url, &["compact"])
            .expect(0)
            .text()
            .starts_with("compacted in ")
    );

    // export: to a file with a summary, to stdout as the data itself.
    let file = env.dir.path().join("dump.ndjson");
    let file_arg = file.to_str().expect("utf-8 path");
    let j = env
        .run(url, &["--json", "export", "-o", file_arg])
        .expect(0)
        .json();
    assert_eq!(
        (j["records"].as_u64(), j["spaces"].as_u64()),
        (Some(5), Some(2))
    );
    let dumped = std::fs::read(&file).expect("export file");
    assert_eq!(env.run(url, &["export"]).expect(0).stdout, dumped);
    assert_eq!(dumped.iter().filter(|&&b| b == b'\n').count(), 5);

    // import into the other backend, from a file and from stdin, then export the same bytes.
    let j = env
        .run(other_url, &["--json", "import", file_arg])
        .expect(0)
        .json();
    assert_eq!(j["records"], 5);
    assert_eq!(env.run(other_url, &["export"]).expect(0).stdout, dumped);
    let piped = env.sqlite_url("piped.db");
    let r = env.run_stdin(&piped, &["import"], Some(&dumped)).expect(0);
    assert!(r.text().starts_with("imported 5 records"), "{}", r.text());
    assert_eq!(env.run(&piped, &["export"]).expect(0).stdout, dumped);

    // migrate into a fresh store, verified by checksums.
    let target = env.fs_url("migrated");
    let j = env
        .run(url, &["--json", "migrate", "--to", &target])
        .expect(0)
        .json();
    assert_eq!(j["verified"], true);
    assert_eq!(j["copied"], 5);
    assert_eq!(j["spaces"].as_array().map(Vec::len), Some(2));
    assert_eq!(env.run(&target, &["export"]).expect(0).stdout, dumped);

    // verify a sound store.
    let j = env.run(url, &["--json", "verify"]).expect(0).json();
    assert_eq!(
        (j["ok"].as_bool(), j["records"].as_u64()),
        (Some(true), Some(5))
    );
    assert!(
        env.run(url, &["verify"])
            .expect(0)
            .text()
            .contains("0 problems")
    );

    // del.
    assert!(env.run(url, &["del", "a"]).expect(0).stdout.is_empty());
    env.run(url, &["del", "a"]).expect(1);
    assert_eq!(
        env.run(url, &["--json", "del", "b"]).expect(0).json()["deleted"],
        true
    );
    assert_eq!(
        env.run(url, &["--json", "del", "b"]).expect(1).json()["deleted"],
        false
    );
    assert_eq!(env.run(url, &["keys"]).expect(0).text(), "bin\nc\n");
}

#[test]
fn every_command_on_fs() {
    let env = Env::new();
    every_command(&env, &env.fs_url("data"), &env.sqlite_url("copy.db"));
}

#[test]
fn every_command_on_redis() {
    let server = nadb_testkit::redis::RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let env = Env::new();
    every_command(&env, &server.url(), &env.fs_url("copy"));
    // Migrating the fs copy into a second root of the same server.
    let copy = format!("{}?prefix=copy", server.url());
    env.run(&env.fs_url("copy"), &["migrate", "--to", &copy])
        .expect(0);
    assert_eq!(
        env.run(&copy, &["keys"]).expect(0).text(),
        env.run(&env.fs_url("copy"), &["keys"]).expect(0).text()
    );
}

#[test]
fn every_command_on_sqlite() {
    let env = Env::new();
    every_command(&env, &env.sqlite_url("data.db"), &env.fs_url("copy"));
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    let url = env.fs_url("data");
    for args in [
        &[][..],
        &["--no-such-flag"],
        &["frobnicate"],
        &["get"],
        &["query"],
        &["set", "k", "v", "--ttl", "5 parsecs"],
        &["set", "k", "v", "--ttl", "0"],
        &["set", "", "v"],
        &["set", "k", "v", "--tag", ""],
        &["--db", "../etc", "get", "k"],
        &["keys", "--limit", "lots"],
    ] {
        let r = env.run(&url, args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        r.expect(2);
        let mut json = args.to_vec();
        json.push("--json");
        let j = env.run(&url, &json).expect(2).json();
        assert_eq!(j["error"]["code"], 2, "{args:?}");
        assert_eq!(j["error"]["kind"], "usage");
    }
    // --help and --version are not errors.
    assert!(
        env.run(&url, &["--help"])
            .expect(0)
            .text()
            .contains("Exit codes")
    );
    assert!(
        env.run(&url, &["--version"])
            .expect(0)
            .text()
            .starts_with("nadb ")
    );
    // Nothing was written by the refused commands.
    assert_eq!(env.run(&url, &["keys"]).expect(0).text(), "");
}

#[test]
fn bad_urls_exit_3_with_one_line() {
    let env = Env::new();
    for url in ["nosuch://x", "no-scheme", "sqlite://", "memory://extra"] {
        let r = env.run(url, &["get", "k"]).expect(3);
        assert!(r.stdout.is_empty());
        let j = env.run(url, &["--json", "keys"]).expect(3).json();
        assert_eq!(j["error"]["kind"], "failure", "{url}");
    }
    let r = env.run("nosuch://x", &["get", "k"]);
    assert!(r.stderr.contains("unknown scheme"), "{}", r.stderr);
}

#[test]
fn import_refuses_a_bad_line_and_reads_older_lines() {
    let env = Env::new();
    let url = env.fs_url("data");
    let bad = b"{\"key\":\"a\",\"value\":\"1\"}\n{\"key\":\"b\",\"value_b64\":\"%%%\"}\n";
    let r = env.run_stdin(&url, &["import", "-"], Some(bad)).expect(3);
    assert!(r.stderr.contains("line 2"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("%%%"),
        "the message quotes the value: {}",
        r.stderr
    );
    assert_eq!(
        env.run(&url, &["keys"]).expect(0).text(),
        "",
        "nothing written"
    );
    let missing = env.dir.path().join("missing.ndjson");
    env.run(&url, &["import", missing.to_str().expect("path")])
        .expect(3);

    let older = b"{\"key\": [\"tuple\", \"example\"], \"value\": {\"dict\": \"example\"}}\n{\"key\": 123, \"value\": null}\n{\"key\": \"s\", \"value\": \"one\"}\n{\"key\": \"s\", \"value\": \"two\"}\n";
    let j = env
        .run_stdin(&url, &["--json", "--db", "old", "import"], Some(older))
        .expect(0)
        .json();
    assert_eq!(
        (j["lines"].as_u64(), j["records"].as_u64()),
        (Some(4), Some(4))
    );
    let old = |args: &[&str]| {
        let mut all = vec!["--db", "old"];
        all.extend_from_slice(args);
        env.run(&url, &all).expect(0).stdout
    };
    assert_eq!(
        old(&["get", "[\"tuple\",\"example\"]"]),
        b"{\"dict\":\"example\"}"
    );
    assert_eq!(old(&["get", "123"]), b"null");
    assert_eq!(old(&["get", "s"]), b"two");
}

#[test]
fn a_cut_torn_tail_is_reported_on_stderr() {
    let env = Env::new();
    let url = env.fs_url("data");
    env.run(&url, &["set", "k", "kept"]).expect(0);
    // What a crash in the middle of a write leaves: a partial record after the last one.
    let dir = env.dir.path().join("data");
    let seg = std::fs::read_dir(&dir)
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .max()
        .expect("a segment");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&seg)
        .expect("open segment");
    f.write_all(&[0x4e, 0x41, 0x01, 0x00, 0x00, 0x00, 0x07])
        .expect("append");
    drop(f);
    let r = env.run(&url, &["get", "k"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(r.text(), "kept");
    assert!(
        r.stderr.contains("WARN") && r.stderr.contains("cut an incomplete tail"),
        "{}",
        r.stderr
    );
    let side = std::fs::read_dir(&dir)
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().contains(".cut-"))
        .expect("a side file with the cut bytes");
    assert!(r.stderr.contains(&*side.to_string_lossy()), "{}", r.stderr);
    // Once cut, the next open has nothing to report.
    env.run(&url, &["get", "k"]).expect(0);
}

#[test]
fn verify_reports_a_flipped_bit_in_a_segment() {
    let env = Env::new();
    let url = env.fs_url("data");
    let mut lines = Vec::new();
    for i in 0..200 {
        lines.push(format!(
            "{{\"key\":\"k{i:03}\",\"value\":\"MARKER-{i:03}-{}\",\"tags\":[\"t{}\"]}}",
            "v".repeat(64),
            i % 3
        ));
    }
    let input = lines.join("\n");
    env.run_stdin(&url, &["import"], Some(input.as_bytes()))
        .expect(0);
    assert!(
        env.run(&url, &["verify"])
            .expect(0)
            .text()
            .contains("0 problems")
    );

    // Flip one bit inside a value in the middle of the log.
    let dir = env.dir.path().join("data");
    let mut segments: Vec<_> = std::fs::read_dir(&dir)
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segments.sort();
    let seg = segments.first().expect("a segment").clone();
    let mut bytes = std::fs::read(&seg).expect("read segment");
    let at = bytes
        .windows(10)
        .position(|w| w == b"MARKER-100")
        .expect("value in the segment");
    bytes[at + 3] ^= 0x04;
    std::fs::write(&seg, &bytes).expect("write segment");

    let r = env.run(&url, &["--json", "verify"]).expect(3);
    assert!(r.stderr.contains("problem"), "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["ok"], false);
    let problems = j["problems"].as_array().expect("problems");
    assert!(!problems.is_empty());
    let seg_name = seg.file_name().and_then(|n| n.to_str()).expect("name");
    assert!(
        problems.iter().any(|p| {
            p["location"]
                .as_str()
                .is_some_and(|l| l.ends_with(seg_name))
                && p["offset"].as_u64().is_some_and(|o| o <= at as u64)
        }),
        "no problem names {seg_name} at or before {at}: {problems:?}"
    );
    assert_eq!(problems.len(), 1, "only the damaged record: {problems:?}");
    let r = env.run(&url, &["verify"]).expect(3);
    assert!(r.text().contains(seg_name), "{}", r.text());

    // Without hint files the log is replayed at open, which finds the damage first.
    for e in std::fs::read_dir(&dir).expect("list").flatten() {
        if e.path().extension().is_some_and(|x| x == "hint") {
            std::fs::remove_file(e.path()).expect("remove hint");
        }
    }
    let j = env.run(&url, &["--json", "verify"]).expect(3).json();
    let problems = j["problems"].as_array().expect("problems");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0]["location"]
            .as_str()
            .is_some_and(|l| l.ends_with(seg_name))
    );
    assert!(
        problems[0]["offset"]
            .as_u64()
            .is_some_and(|o| o <= at as u64)
    );
}

#[test]
fn migrate_reports_a_mismatch() {
    let env = Env::new();
    let from = env.fs_url("from");
    let to = env.sqlite_url("to.db");
    env.run(&from, &["set", "k", "v"]).expect(0);
    env.run(&to, &["set", "stray", "x"]).expect(0);
    let r = env
        .run(&from, &["--json", "migrate", "--to", &to])
        .expect(3);
    let j = r.json();
    assert_eq!(j["verified"], false);
    let space = &j["spaces"][0];
    assert_eq!(
        (
            space["source"]["records"].as_u64(),
            space["target"]["records"].as_u64()
        ),
        (Some(1), Some(2))
    );
    assert!(r.stderr.contains("differ"), "{}", r.stderr);
}

#[test]
fn bench_reports_in_three_forms_and_leaves_nothing_behind() {
    let server = nadb_testkit::redis::RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let env = Env::new();
    let out = env.dir.path().join("report");
    let redis = server.url();
    let url = env.fs_url("untouched");
    // Keys the run did not write, some close to its own names, must survive it.
    let foreign = ["nadb:keep", "nadb-bench-x", "nadb-bench-:raw:k", "user:1"];
    for k in foreign {
        server.cli(&["SET", k, "mine"]).expect("SET");
    }
    let args = [
        "--json",
        "bench",
        "--keys",
        "300",
        "--backend",
        "memory",
        "--backend",
        "sqlite",
        "--backend",
        "redis",
        "--redis",
        &redis,
        "-o",
    ];
    let mut args = args.to_vec();
    let out_arg = out.display().to_string();
    args.push(&out_arg);
    let j = env.run(&url, &args).expect(0).json();
    let rows = j["rows"].as_array().expect("rows");
    for backend in ["memory", "sqlite", "redis"] {
        assert!(
            rows.iter()
                .any(|r| r["backend"] == backend && r["workload"] == "get_hot"),
            "{backend} measured"
        );
    }
    assert!(
        rows.iter()
            .all(|r| r["value"].as_f64().is_some_and(|v| v > 0.0))
    );
    let file: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report.json"))
            .expect("report.json parses");
    assert_eq!(file["rows"].as_array().map(Vec::len), Some(rows.len()));
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(md.contains("| get hot") && md.contains("raw redis client"));
    let svg = std::fs::read_to_string(out.join("chart.svg")).expect("chart.svg");
    assert!(svg.starts_with("<svg") && svg.contains("raw rusqlite"));
    // Only the foreign keys are left on the server, and the --url store was never opened.
    assert_eq!(
        server.cli(&["DBSIZE"]).expect("DBSIZE").trim(),
        foreign.len().to_string()
    );
    for k in foreign {
        assert_eq!(server.cli(&["GET", k]).expect("GET").trim(), "mine", "{k}");
    }
    // Sizes follow --keys.
    assert_eq!(j["config"]["durable_writes"], 20);
    // bench never opens --url, and its password never reaches the report.
    let secret = "redis://u:hunter2@127.0.0.1:1/0";
    let j = env
        .run(
            secret,
            &["--json", "bench", "--keys", "100", "--backend", "memory"],
        )
        .expect(0)
        .json();
    let command = j["command"].as_str().expect("command");
    assert!(
        command.contains("127.0.0.1:1") && !command.contains("hunter2"),
        "{command}"
    );
    assert!(!env.dir.path().join("untouched").exists());

    // Without --json: the markdown table.
    let text = env
        .run(&url, &["bench", "--keys", "100", "--backend", "memory"])
        .expect(0)
        .text();
    assert!(
        text.contains("| set 100 × 100 B + flush | memory | buffered |"),
        "{text}"
    );
    // Usage errors.
    env.run(&url, &["bench", "--backend", "redis"]).expect(2);
    env.run(&url, &["bench", "--backend", "memory", "--redis", &redis])
        .expect(2);
    env.run(&url, &["bench", "--keys", "0"]).expect(2);
    env.run(&url, &["bench", "--backend", "tape"]).expect(2);
}
