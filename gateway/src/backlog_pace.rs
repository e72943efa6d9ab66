//! The processors' pace, read off the transfers stream's samples: how
//! many commands per second left it while it held work. The back-pressure
//! check (`backlog.rs`) divides the backlog by it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The clear rate is measured over this long: long enough to smooth the
/// processors' batches, short enough to follow a change of pace.
pub(crate) const RATE_WINDOW: Duration = Duration::from_secs(5);
/// A queue that held work at this many polls in a row (1 s) is measured on
/// its own pace alone (processors slowed down or stopped), not the
/// remembered one.
pub(crate) const SATURATED_POLLS: usize = 5;
/// How long the pace of the last busy spell stands for the processors'
/// pace while they are idle.
pub(crate) const PEAK_MEMORY: Duration = Duration::from_secs(60);
/// One reading of the stream: (when, last sequence, messages in it).
pub(crate) type Sample = (Instant, u64, u64);

/// Messages per second that left the stream over the polls between which
/// it held work at both ends (an interval that began or ended empty says
/// how much work came, not how fast it goes). `None` without such an
/// interval.
pub(crate) fn busy_rate<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> Option<f64> {
    let mut samples = samples.into_iter();
    let mut prev = samples.next()?;
    let (mut cleared, mut seconds) = (0.0, 0.0);
    for next in samples {
        let (&(t0, seq0, n0), &(t1, seq1, n1)) = (prev, next);
        if n0 > 0 && n1 > 0 && t1 > t0 {
            let published = seq1.saturating_sub(seq0) as f64;
            let growth = n1 as f64 - n0 as f64;
            cleared += (published - growth).max(0.0);
            seconds += (t1 - t0).as_secs_f64();
        }
        prev = next;
    }
    (seconds > 0.0).then(|| cleared / seconds)
}

/// The processors' pace, from the samples of the last [`RATE_WINDOW`]
/// (oldest first), their busy rate `window` and the last busy spell's
/// `peak`: when the queue held work at the last [`SATURATED_POLLS`] polls
/// or more, the busy rate of that whole run of polls (up to the window);
/// else the better of `window` and `peak`. `None`: no busy interval seen
/// yet (a burst's first poll on a fresh gateway), which sheds nothing
/// until the next poll.
///
/// The whole run, not its last second: processors under load clear in
/// batches (hundreds of acks at once, a few times a second, and now and
/// then a slow transaction), so under overload a 1 s reading swung by a
/// quarter and a 2 s one still fell to half the 5 s pace at times, each
/// dip read as a backlog of twice as many seconds. A stop still shows:
/// the reading falls by a fifth per second of it while the stream does
/// not shrink, so a queue near the shedding point is shed within a second
/// or two.
pub(crate) fn pace(
    samples: &VecDeque<Sample>,
    window: Option<f64>,
    peak: Option<f64>,
) -> Option<f64> {
    let busy = samples.iter().rev().take_while(|s| s.2 > 0).count();
    if busy >= SATURATED_POLLS {
        return busy_rate(samples.iter().skip(samples.len() - busy));
    }
    match (window, peak) {
        (Some(w), Some(p)) => Some(w.max(p)),
        (w, p) => w.or(p),
    }
}

/// The best busy rate of the last [`PEAK_MEMORY`].
#[derive(Default)]
pub(crate) struct Peak(Option<(f64, Instant)>);

impl Peak {
    pub(crate) fn get(&self, now: Instant) -> Option<f64> {
        self.0
            .filter(|&(_, at)| now - at <= PEAK_MEMORY)
            .map(|(rate, _)| rate)
    }

    pub(crate) fn note(&mut self, rate: Option<f64>, now: Instant) {
        if let Some(rate) = rate
            && self.get(now).is_none_or(|p| rate >= p)
        {
            self.0 = Some((rate, now));
        }
    }
}
