//! Tests of a virtual user: the open model's arrival gaps, and the size of its task.

use super::*;

/// The open model's arrivals: over many seeded draws the mean gap is 1 / rate, and the
/// spread is that of an exponential distribution (standard deviation ≈ mean).
#[test]
fn exp_gap_has_mean_one_over_rate() {
    for (seed, rate) in [(1u64, 0.5f64), (2, 3.0), (3, 40.0)] {
        let mut rng = SmallRng::seed_from_u64(seed);
        let n = 200_000;
        let gaps: Vec<f64> = (0..n)
            .map(|_| exp_gap(rate, &mut rng).as_secs_f64())
            .collect();
        let mean = gaps.iter().sum::<f64>() / n as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n as f64;
        let want = 1.0 / rate;
        assert!(
            (mean - want).abs() / want < 0.02,
            "rate {rate}: mean gap {mean} s, want {want} s"
        );
        assert!(
            (var.sqrt() - want).abs() / want < 0.05,
            "rate {rate}: std dev {} s, want about {want} s",
            var.sqrt()
        );
    }
}

#[test]
fn exp_gap_without_a_rate_waits_an_hour() {
    let mut rng = SmallRng::seed_from_u64(1);
    assert_eq!(exp_gap(0.0, &mut rng), Duration::from_secs(3600));
    assert_eq!(exp_gap(-1.0, &mut rng), Duration::from_secs(3600));
}

#[test]
fn a_virtual_user_future_is_small() {
    let plan = crate::scenario::Scenario::parse(
        "name = \"x\"\n[population]\nusers = 2\n[[population.rooms]]\nclass = \"s\"\nsize = 2\nrooms_per_user = 1\n[[behaviour.ops]]\nop = \"post\"\nper_user_per_hour = 1\n[[load]]\nramp = { to = 2, over = \"1s\" }\n",
        std::path::Path::new("x.toml"),
    )
    .expect("plan");
    let shared = Arc::new(Shared::new(
        plan,
        vec![(
            "127.0.0.1:1".parse().expect("addr"),
            "ws://127.0.0.1:1/ws".into(),
        )],
        1,
    ));
    let user = Arc::new(SimUser {
        id: 1,
        token: String::new(),
        rooms: Vec::new(),
        contacts: Vec::new(),
    });
    let t = CancellationToken::new();
    let fut = run(
        shared,
        0,
        user,
        Window {
            start: Instant::now(),
            end: Instant::now(),
        },
        t.clone(),
        t,
    );
    let size = std::mem::size_of_val(&fut);
    println!("virtual user future: {size} bytes");
    // Measured 2,096 B (debug) with the set-up boxed, 3,360 B without.
    assert!(size < 2600, "{size} bytes");
}
