//! A connection's unfinished streams, by sequence number: a queue from the
//! oldest unfinished request on, so a reply finds its stream by id in O(1),
//! `match = "order"` finds the oldest, and finished ones leave the front.

use std::collections::VecDeque;

/// One request whose stream has not ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stream {
    /// Send time (open loop: intended send time), ns since the flood began.
    pub sent_ns: u64,
    /// Sent inside the measurement window: its timings count.
    pub in_window: bool,
    pub first_ns: Option<u64>,
    pub last_ns: u64,
    pub replies: u32,
    pub units: Option<f64>,
}

impl Stream {
    pub fn new(sent_ns: u64, in_window: bool) -> Stream {
        Stream {
            sent_ns,
            in_window,
            first_ns: None,
            last_ns: sent_ns,
            replies: 0,
            units: None,
        }
    }
}

impl Stream {
    /// Counts a reply arriving at `now`; the gap since the previous one,
    /// when there was one and the stream's timings count.
    #[inline]
    pub fn on_reply(&mut self, now: u64) -> Option<u64> {
        let gap =
            (self.first_ns.is_some() && self.in_window).then(|| now.saturating_sub(self.last_ns));
        self.first_ns.get_or_insert(now);
        self.last_ns = now;
        self.replies += 1;
        gap
    }
}

/// The open streams of one connection.
#[derive(Default)]
pub struct Open {
    base_seq: u64,
    slots: VecDeque<Option<Stream>>,
    count: usize,
}

impl Open {
    /// Opens request `seq`, the next after every one opened before.
    pub fn push(&mut self, seq: u64, s: Stream) {
        if self.slots.is_empty() {
            self.base_seq = seq;
        }
        debug_assert_eq!(seq, self.base_seq + self.slots.len() as u64);
        self.slots.push_back(Some(s));
        self.count += 1;
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn get_mut(&mut self, seq: u64) -> Option<&mut Stream> {
        let i = seq.checked_sub(self.base_seq)?;
        self.slots.get_mut(i as usize)?.as_mut()
    }

    /// The oldest unfinished request.
    pub fn oldest(&self) -> Option<u64> {
        (!self.slots.is_empty()).then_some(self.base_seq)
    }

    /// Ends request `seq`'s stream and returns it.
    pub fn take(&mut self, seq: u64) -> Option<Stream> {
        let i = seq.checked_sub(self.base_seq)? as usize;
        let s = self.slots.get_mut(i)?.take()?;
        self.count -= 1;
        while self.slots.front().is_some_and(Option::is_none) {
            self.slots.pop_front();
            self.base_seq += 1;
        }
        Some(s)
    }

    /// Every open stream, oldest first, with its sequence number.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Stream)> {
        let base = self.base_seq;
        self.slots
            .iter()
            .enumerate()
            .filter_map(move |(i, s)| s.as_ref().map(|s| (base + i as u64, s)))
    }

    /// Ends every stream, oldest first.
    pub fn drain(&mut self) -> Vec<Stream> {
        self.count = 0;
        self.slots.drain(..).flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_finish_in_any_order() {
        let mut o = Open::default();
        for seq in 5..9 {
            o.push(seq, Stream::new(seq * 10, true));
        }
        assert_eq!(o.oldest(), Some(5));
        assert_eq!(o.take(6).unwrap().sent_ns, 60);
        assert!(o.get_mut(6).is_none());
        assert_eq!(o.take(5).unwrap().sent_ns, 50);
        assert_eq!(o.oldest(), Some(7));
        assert_eq!(o.len(), 2);
        assert!(o.take(4).is_none() && o.take(99).is_none());
        assert_eq!(o.iter().map(|(s, _)| s).collect::<Vec<_>>(), [7, 8]);
        assert_eq!(o.drain().len(), 2);
        assert!(o.is_empty());
        o.push(20, Stream::new(0, false));
        assert_eq!(o.oldest(), Some(20));
    }
}
