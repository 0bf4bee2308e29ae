//! The waits' and retries' tests, on tokio's paused clock.
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;

fn no_jitter() -> PollPolicy {
    PollPolicy { jitter: 0.0, ..PollPolicy::default() }
}

#[test]
fn intervals_without_a_hint_grow_to_max() {
    let p = no_jitter();
    let mut prev = None;
    let mut seen = vec![];
    for _ in 0..20 {
        let i = p.next_interval(Duration::ZERO, prev, None);
        seen.push(i);
        prev = Some(i);
    }
    assert_eq!(seen[0], p.first);
    assert!(seen.windows(2).all(|w| w[1] >= w[0]));
    assert_eq!(*seen.last().unwrap(), p.max);
}

#[test]
fn intervals_with_a_hint_are_sparse_then_dense() {
    let p = no_jitter();
    let expected = Some(Duration::from_secs(300));
    // Early on: the longest interval.
    assert_eq!(p.next_interval(Duration::from_secs(10), None, expected), p.max);
    // Just before dense polling starts (at 255 s): land on it exactly.
    assert_eq!(p.next_interval(Duration::from_secs(250), None, expected), Duration::from_secs(5));
    // Dense around the expected end.
    assert_eq!(p.next_interval(Duration::from_secs(290), None, expected), p.first);
    // Growing slowly when overdue, never past max.
    assert_eq!(p.next_interval(Duration::from_secs(315), None, expected), Duration::from_millis(5500));
    assert_eq!(p.next_interval(Duration::from_secs(3000), None, expected), p.max);
}

#[test]
fn bad_policies_are_rejected() {
    assert!(PollPolicy::default().validate().is_ok());
    assert!(PollPolicy { first: Duration::ZERO, ..PollPolicy::default() }.validate().is_err());
    assert!(PollPolicy { first: Duration::from_secs(30), ..PollPolicy::default() }.validate().is_err());
    assert!(PollPolicy { growth: 0.5, ..PollPolicy::default() }.validate().is_err());
    assert!(PollPolicy { jitter: 1.5, ..PollPolicy::default() }.validate().is_err());
}

#[tokio::test(start_paused = true)]
async fn polls_until_ready_and_counts_calls() {
    let policy = no_jitter();
    let start = Instant::now();
    let calls = AtomicU32::new(0);
    let (value, stats) = poll(&policy, "thing", Duration::from_secs(600), || async {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(if n == 4 { Check::Ready(n) } else { Check::Pending })
    })
    .await
    .unwrap();
    assert_eq!(value, 4);
    assert_eq!(stats.calls, 4);
    // 2.5 s, then 3.125 s, then 3.90625 s (tokio's timer rounds each sleep up to the millisecond).
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_micros(9_531_250) && elapsed <= Duration::from_millis(9_534), "{elapsed:?}");
}

#[tokio::test(start_paused = true)]
async fn deadline_is_a_timeout_error() {
    let policy = no_jitter();
    let start = Instant::now();
    let err = poll(&policy, "stack update", Duration::from_secs(3600), || async { Ok(Check::<()>::Pending) })
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Timeout { ref operation, after } if operation == "stack update" && after == Duration::from_secs(3600))
    );
    assert_eq!(start.elapsed(), Duration::from_secs(3600));
}

#[tokio::test(start_paused = true)]
async fn throttling_backs_off_and_transient_errors_do_not() {
    let policy = no_jitter();
    let calls = Arc::new(AtomicU32::new(0));
    let start = Instant::now();
    let c = calls.clone();
    let (_, stats) = poll(&policy, "x", Duration::from_secs(600), move || {
        let c = c.clone();
        async move {
            match c.fetch_add(1, Ordering::SeqCst) {
                0..=3 => Err(Error::Throttled("Rate exceeded".into())),
                4 => Err(Error::Transient("503".into())),
                _ => Ok(Check::Ready(())),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(stats, PollStats { calls: 6, throttled: 4, errors: 1 });
    // Throttle backoffs are in [b/2, b] for b = 2.5, 5, 10, 20 s; then one normal 2.5 s interval.
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(18_750 + 2_500) && elapsed <= Duration::from_millis(37_500 + 2_500),
        "{elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn non_retryable_errors_end_the_wait_at_once() {
    let policy = no_jitter();
    let calls = AtomicU32::new(0);
    let err = poll(&policy, "x", Duration::from_secs(600), || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Err::<Check<()>, _>(Error::AccessDenied("no".into()))
    })
    .await
    .unwrap_err();
    assert!(matches!(err, Error::AccessDenied(_)));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn too_many_transient_errors_in_a_row_give_up() {
    let policy = PollPolicy { max_consecutive_errors: 3, ..no_jitter() };
    let calls = AtomicU32::new(0);
    let err = poll(&policy, "x", Duration::from_secs(600), || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Err::<Check<()>, _>(Error::Transient("reset".into()))
    })
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Transient(_)));
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_status_call_is_abandoned() {
    let policy = no_jitter();
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    let (_, stats) = poll(&policy, "x", Duration::from_secs(600), || {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                std::future::pending::<()>().await;
            }
            Ok(Check::Ready(()))
        }
    })
    .await
    .unwrap();
    assert_eq!(stats.errors, 1);
    assert_eq!(start.elapsed(), policy.call_timeout + policy.first);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_future_stops_polling() {
    let policy = no_jitter();
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let wait = poll(&policy, "x", Duration::from_secs(600), move || {
        c.fetch_add(1, Ordering::SeqCst);
        async { Ok(Check::<()>::Pending) }
    });
    let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
    let made = calls.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(calls.load(Ordering::SeqCst), made);
}

#[tokio::test(start_paused = true)]
async fn hinted_polling_detects_a_five_minute_stage_quickly_and_cheaply() {
    let policy = PollPolicy::default();
    let finish = Duration::from_secs(300);
    let start = Instant::now();
    let (noticed, stats) = Wait::new(&policy, "build", Duration::from_secs(3600))
        .expected(Some(Duration::from_secs(300)))
        .seed(7)
        .until(|| async { Ok(if start.elapsed() >= finish { Check::Ready(start.elapsed()) } else { Check::Pending }) })
        .await
        .unwrap();
    assert!(noticed - finish <= Duration::from_millis(2750), "lag {:?}", noticed - finish);
    assert!(stats.calls <= 40, "{} calls", stats.calls);
}

/// After an ambiguous failure the effect is looked for before calling again; throttling is
/// retried without looking; an effect not found means one more call.
#[tokio::test(start_paused = true)]
async fn retry_reconciled_looks_for_the_effect_after_an_ambiguous_failure_only() {
    let policy = RetryPolicy::default();
    for (first, found, calls_expected, looks_expected) in [
        (Error::Transient("timeout".into()), Some(7), 1, 1),
        (Error::Transient("timeout".into()), None, 2, 1),
        (Error::Throttled("slow".into()), Some(7), 2, 0),
    ] {
        let (calls, looks) = (AtomicU32::new(0), AtomicU32::new(0));
        let first = std::sync::Mutex::new(Some(first));
        let (v, _) = policy
            .retry_reconciled(
                "set weights",
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    match first.lock().unwrap().take() {
                        Some(e) => Err(e),
                        None => Ok(42),
                    }
                },
                || async {
                    looks.fetch_add(1, Ordering::SeqCst);
                    Ok(found)
                },
            )
            .await
            .unwrap();
        let got = (calls.load(Ordering::SeqCst), looks.load(Ordering::SeqCst));
        assert_eq!(got, (calls_expected, looks_expected), "{found:?}");
        assert_eq!(v, if looks_expected == 1 && found.is_some() { 7 } else { 42 });
    }
}

#[tokio::test(start_paused = true)]
async fn retry_retries_only_retryable_errors() {
    let policy = RetryPolicy::default();
    let calls = AtomicU32::new(0);
    let (v, attempts) = policy
        .retry("start build", || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(Error::Throttled("slow".into())),
                1 => Err(Error::Transient("reset".into())),
                _ => Ok(42),
            }
        })
        .await
        .unwrap();
    assert_eq!((v, attempts), (42, 3));

    let calls = AtomicU32::new(0);
    let err = policy
        .retry("start build", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(Error::Conflict("busy".into()))
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)));
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let calls = AtomicU32::new(0);
    let err = policy
        .retry("start build", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(Error::Transient("reset".into()))
        })
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(calls.load(Ordering::SeqCst), policy.max_attempts);
}
