//! Which process names get a label of their own: at most `--metrics-top` of them, so the
//! series stay bounded whatever runs on the host. A name once admitted keeps its label
//! (a counter that came and went would look like resets to Prometheus); while there is
//! room, each interval admits its largest unnamed talkers first. `families.rs` labels
//! everyone else `other`.

use rustc_hash::FxHashSet;

/// The admitted names.
pub struct NamedSet {
    limit: usize,
    names: FxHashSet<String>,
}

impl NamedSet {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            names: FxHashSet::default(),
        }
    }

    /// Admits the names of `talkers` (name, bytes this interval), the most bytes first,
    /// while there is room; ties go by name, so the choice does not depend on hashing.
    pub fn admit<'a>(&mut self, talkers: impl Iterator<Item = (&'a str, u64)>) {
        if self.names.len() >= self.limit {
            return;
        }
        let mut unnamed: Vec<(&str, u64)> = talkers
            .filter(|(name, bytes)| *bytes > 0 && !self.names.contains(*name))
            .collect();
        unnamed.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let room = self.limit - self.names.len();
        self.names.extend(
            unnamed
                .into_iter()
                .take(room)
                .map(|(name, _)| name.to_owned()),
        );
    }

    pub fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }
}
