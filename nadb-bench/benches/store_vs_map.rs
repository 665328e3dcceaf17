//! Criterion: Store get/set on the memory backend beside a raw `RwLock<HashMap>`, in one run.
//! Run with `cargo bench -p nadb-bench`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use nadb_bench::{keys, loaded_map, loaded_store, map_get, map_set, value};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let store = rt.block_on(loaded_store()).expect("store");
    let map = loaded_map();
    let keys = keys();
    let v = value();

    let mut g = c.benchmark_group("get");
    let mut i = 0;
    g.bench_function("store", |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % keys.len();
            let k = &keys[i];
            let store = &store;
            async move { black_box(store.get(k).await) }
        })
    });
    g.bench_function("raw_map", |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % keys.len();
            let k = &keys[i];
            let map = &map;
            async move { black_box(map_get(map, k)) }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("set");
    g.bench_function("store", |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % keys.len();
            let (k, v, store) = (&keys[i], v.clone(), &store);
            async move { black_box(store.set(k, v).await) }
        })
    });
    g.bench_function("raw_map", |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % keys.len();
            let (k, v, map) = (&keys[i], v.clone(), &map);
            async move { map_set(map, k, v) }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
