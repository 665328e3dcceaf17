//! Store get/set on the memory backend beside a raw `RwLock<HashMap<String, Bytes>>`, in one
//! process, alternating rounds so both see the same machine state. Prints ns/op and the ratio.
//!
//! Run with `cargo run --release -p nadb-bench`.

use std::hint::black_box;
use std::time::Instant;

use nadb_bench::{keys, loaded_map, loaded_store, map_get, map_set, value};

const OPS: usize = 1_000_000;
const ROUNDS: usize = 7;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> nadb::Result<()> {
    let store = loaded_store().await?;
    let map = loaded_map();
    let keys = keys();
    let v = value();
    let (mut sg, mut mg, mut ss, mut ms) = (vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for i in 0..OPS {
            black_box(store.get(&keys[i % keys.len()]).await?);
        }
        sg.push(t.elapsed().as_nanos() as f64 / OPS as f64);

        let t = Instant::now();
        for i in 0..OPS {
            black_box(async { map_get(&map, &keys[i % keys.len()]) }.await);
        }
        mg.push(t.elapsed().as_nanos() as f64 / OPS as f64);

        let t = Instant::now();
        for i in 0..OPS / 4 {
            store.set(&keys[i % keys.len()], v.clone()).await?;
        }
        ss.push(t.elapsed().as_nanos() as f64 / (OPS / 4) as f64);

        let t = Instant::now();
        for i in 0..OPS / 4 {
            async { map_set(&map, &keys[i % keys.len()], v.clone()) }.await;
        }
        ms.push(t.elapsed().as_nanos() as f64 / (OPS / 4) as f64);
    }
    let (sg, mg, ss, ms) = (median(sg), median(mg), median(ss), median(ms));
    println!("workload  store ns/op  raw map ns/op  ratio (store/raw)");
    println!("get       {sg:>11.1}  {mg:>13.1}  {:>6.2}x", sg / mg);
    println!("set       {ss:>11.1}  {ms:>13.1}  {:>6.2}x", ss / ms);
    println!(
        "({} keys, {}-byte values, median of {ROUNDS} rounds)",
        keys.len(),
        v.len()
    );
    Ok(())
}
