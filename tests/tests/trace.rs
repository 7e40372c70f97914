//! One pull is one trace across the CLI and the image daemon.

use std::collections::BTreeSet;
use std::time::Duration;

use rdock_tests::{Collector, Entry, Env, Layer, OciLayout, Registry};

#[test]
fn pull_is_one_trace_across_cli_and_imaged() {
    let collector = Collector::start();
    let registry = Registry::start();
    let env = Env::builder().otlp(&collector.endpoint()).start();
    OciLayout::new()
        .layer(Layer::gzip(&[
            Entry::dir("etc"),
            Entry::file("etc/hello", "hello\n"),
        ]))
        .push(env.root(), &registry, "test/traced:v1");

    env.cli(&["pull", &format!("{}/test/traced:v1", registry.addr())])
        .ok();

    // A trace with a span of the CLI and a span of imaged's Pull RPC.
    let shared = collector.wait_for(Duration::from_secs(10), |spans| {
        let cli: BTreeSet<&str> = spans
            .iter()
            .filter(|s| s.service == "rdockctl")
            .map(|s| s.trace_id.as_str())
            .collect();
        spans
            .iter()
            .find(|s| {
                s.service == "rdock-imaged"
                    && s.name.contains("Pull")
                    && cli.contains(s.trace_id.as_str())
            })
            .map(|s| s.trace_id.clone())
    });
    if shared.is_none() {
        let seen: Vec<String> = collector
            .spans()
            .iter()
            .map(|s| format!("{} {} {}", s.service, s.trace_id, s.name))
            .collect();
        panic!(
            "no trace holds both an rdockctl span and rdock-imaged's Pull span within 10 s; spans received:\n  {}",
            seen.join("\n  ")
        );
    }
}
