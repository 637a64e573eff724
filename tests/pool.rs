//! `OW_CONCURRENCY`: several children of one action, `/run` spread over them, every answer
//! still the request's own.

mod common;
use common::*;

use std::collections::HashSet;

const ACTION: &str = "import os, time\n\
                      def main(args):\n    \
                          time.sleep(args.get('sleep', 0))\n    \
                          return {'id': args['id'], 'pid': os.getpid()}\n";

/// Four clients at once, each `rounds` requests with its own ids; returns the pids seen.
fn hammer(proxy: &Proxy, rounds: usize, sleep: f64) -> HashSet<u64> {
    let seen = concurrently(proxy, 4, move |client, connection| {
        let mut pids = HashSet::new();
        for round in 0..rounds {
            let id = format!("{client}-{round}");
            let answer = connection.run(json!({"id": id, "sleep": sleep}));
            assert_eq!(answer.status, 200);
            let result = answer.json();
            assert_eq!(
                result["id"],
                json!(id),
                "an answer went to the wrong request"
            );
            pids.insert(result["pid"].as_u64().unwrap());
        }
        pids
    });
    seen.into_iter().flatten().collect()
}

#[test]
fn a_pool_of_four_spreads_concurrent_runs_and_keeps_answers_apart() {
    let proxy = Proxy::start_with("python", &[("OW_CONCURRENCY", "4")], &[]);
    init_ok(&proxy, ACTION, "main");
    let pids = hammer(&proxy, 25, 0.02);
    // With four clients each waiting 20 ms per run, a single child could not have served them
    // all: more than one child must have answered.
    assert!(pids.len() > 1, "only one child answered: {pids:?}");
    assert!(
        pids.len() <= 4,
        "more children than the pool holds: {pids:?}"
    );
    let (out, err) = proxy.logs_after(100);
    assert_eq!(count_sentinels(&out), 100);
    assert_eq!(count_sentinels(&err), 100);
}

#[test]
fn without_a_pool_one_child_serves_every_request_in_turn() {
    let proxy = Proxy::python();
    init_ok(&proxy, ACTION, "main");
    let pids = hammer(&proxy, 10, 0.0);
    assert_eq!(pids.len(), 1, "{pids:?}");
}

#[test]
fn allow_concurrent_alone_means_a_pool_of_four() {
    let proxy = Proxy::start_with("python", &[("__OW_ALLOW_CONCURRENT", "true")], &[]);
    init_ok(&proxy, ACTION, "main");
    let pids = hammer(&proxy, 10, 0.05);
    assert!(pids.len() > 1 && pids.len() <= 4, "{pids:?}");
}
