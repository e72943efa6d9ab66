use super::*;
use crate::backlog_pace::PEAK_MEMORY;

/// Samples every 250 ms from `t0`: (last sequence, messages).
fn polls(t0: Instant, readings: &[(u64, u64)]) -> VecDeque<Sample> {
    readings
        .iter()
        .enumerate()
        .map(|(i, &(seq, n))| (t0 + POLL_INTERVAL * i as u32, seq, n))
        .collect()
}

#[test]
fn the_clear_rate_is_what_left_the_stream_while_it_held_work() {
    let t0 = Instant::now();
    let mut s = VecDeque::new();
    s.push_back((t0, 100, 50));
    // 1,000 published, the stream grew by 200: 800 left in 2 s.
    s.push_back((t0 + Duration::from_secs(2), 1_100, 250));
    assert_eq!(busy_rate(&s), Some(400.0));
    // Empty at one end: how much came, not how fast it goes.
    let idle = polls(t0, &[(100, 0), (228, 128)]);
    assert_eq!(busy_rate(&idle), None);
}

#[test]
fn a_burst_after_a_quiet_spell_is_weighed_against_the_last_busy_pace() {
    let t0 = Instant::now();
    // A fresh gateway: idle, then 128 requests at once. Nothing is
    // known of the pace: not shed on this poll.
    let fresh = polls(t0, &[(0, 0), (0, 0), (128, 128)]);
    assert_eq!(pace(&fresh, busy_rate(&fresh), None), None);
    // Same burst after a busy spell that cleared 2,000/s: 0.06 s.
    assert_eq!(
        pace(&fresh, busy_rate(&fresh), Some(2_000.0)),
        Some(2_000.0)
    );
    // The next poll measures it: 100 more came, 200 left in 250 ms.
    let next = polls(t0, &[(0, 0), (0, 0), (128, 128), (228, 28)]);
    assert_eq!(pace(&next, busy_rate(&next), None), Some(800.0));
}

#[test]
fn a_queue_that_never_empties_is_measured_on_its_own_pace() {
    let t0 = Instant::now();
    // 1 s without emptying, 50 leaving per poll: 200/s, even though
    // the processors cleared 2,000/s a minute ago.
    let slow: Vec<(u64, u64)> = (0..5).map(|i| (1_000 + 100 * i, 500 + 50 * i)).collect();
    let s = polls(t0, &slow);
    assert_eq!(pace(&s, busy_rate(&s), Some(2_000.0)), Some(200.0));
    // Processors stopped: nothing leaves, the floor applies.
    let stopped: Vec<(u64, u64)> = (0..5).map(|i| (1_000 + 10 * i, 500 + 10 * i)).collect();
    let stopped = polls(t0, &stopped);
    assert_eq!(
        pace(&stopped, busy_rate(&stopped), Some(2_000.0)),
        Some(0.0)
    );
}

#[test]
fn the_peak_is_remembered_for_a_while() {
    let t0 = Instant::now();
    let mut p = Peak::default();
    p.note(Some(2_000.0), t0);
    p.note(Some(500.0), t0 + Duration::from_secs(1));
    assert_eq!(p.get(t0 + Duration::from_secs(30)), Some(2_000.0));
    assert_eq!(p.get(t0 + PEAK_MEMORY + Duration::from_secs(1)), None);
    p.note(Some(500.0), t0 + PEAK_MEMORY + Duration::from_secs(1));
    assert_eq!(
        p.get(t0 + PEAK_MEMORY + Duration::from_secs(2)),
        Some(500.0)
    );
}

/// A reading taken now: `pending` in the stream, the processors' `pace`.
fn read(b: &Backlog, reading: Option<(u64, Option<f64>)>) {
    b.store(reading, b.mark());
}

#[test]
fn shedding_starts_below_the_budget_and_never_without_a_reading() {
    let b = Backlog::new(Duration::from_secs(2));
    assert!(b.admit().is_ok(), "no reading yet");
    read(&b, Some((1_000, Some(1_000.0))));
    assert!(b.admit().is_ok(), "1 s of work");
    // Shedding starts at 1.5 s (SHED_FROM of the budget), with room for
    // the pace to dip before the backlog reaches 2 s.
    read(&b, Some((1_600, Some(1_000.0))));
    assert!(b.admit().is_err(), "1.6 s of work");
    read(&b, Some((3_000, Some(1_000.0))));
    assert!(matches!(
        b.admit(),
        Err(ApiError::Backlog {
            retry_after_secs: 2
        })
    ));
    // Processors stopped: nothing leaves, the floor rate applies.
    read(&b, Some((1_000, Some(0.0))));
    assert!(b.admit().is_err());
    read(&b, Some((1_000, None)));
    assert!(b.admit().is_ok(), "pace not measured yet: not shed");
    read(&b, None);
    assert!(b.admit().is_ok(), "unknown: not shed");
    assert!(Backlog::new(Duration::ZERO).admit().is_ok());
}

#[test]
fn publishes_since_the_reading_count_until_the_next_one() {
    let b = Backlog::new(Duration::from_secs(2));
    // 1,200 waiting at 1,000/s: 1.2 s, admitted.
    read(&b, Some((1_200, Some(1_000.0))));
    assert_eq!(b.estimate(), 1_200);
    let first = b.admit();
    assert!(first.is_ok());
    drop(first);
    // 300 admitted, not answered yet: 1.5 s, the last one admitted.
    let in_flight: Vec<_> = (0..300).filter_map(|_| b.admit().ok()).collect();
    assert_eq!(in_flight.len(), 300);
    // And 300 others' publishes stored since the reading: 1.8 s.
    for _ in 0..300 {
        b.published();
    }
    assert_eq!(b.estimate(), 1_800);
    assert!(b.admit().is_err(), "shed before the next poll");
    // Answered requests leave the count.
    drop(in_flight);
    assert_eq!(b.estimate(), 1_500);
    // The next reading counts the stored ones itself.
    read(&b, Some((1_500, Some(1_000.0))));
    assert_eq!(b.estimate(), 1_500);
}

#[test]
fn a_saturated_pace_is_smoothed_over_the_busy_polls() {
    let t0 = Instant::now();
    // Held work at 9 polls, 250 published per poll; the processors acked
    // in bursts: 2,500 in 2 s, but only 500 in the last second.
    let cleared = [500, 500, 500, 500, 0, 0, 0, 500];
    let (mut seq, mut n) = (10_000, 2_000);
    let mut readings = vec![(seq, n)];
    for c in cleared {
        seq += 250;
        n = n + 250 - c;
        readings.push((seq, n));
    }
    let s = polls(t0, &readings);
    assert_eq!(pace(&s, busy_rate(&s), None), Some(1_250.0));
    // The last five polls alone.
    let last = polls(t0, &readings[4..]);
    assert_eq!(pace(&last, busy_rate(&last), None), Some(500.0));
}
