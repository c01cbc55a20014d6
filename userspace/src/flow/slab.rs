//! A vector whose indices stay valid while other entries come and go, so the history
//! and the flows can name a flow or a group by a `u32`.

use std::ops::{Index, IndexMut};

use crate::shrink;

#[derive(Debug)]
pub(super) struct Slab<T> {
    entries: Vec<Option<T>>,
    vacant: Vec<u32>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            vacant: Vec::new(),
        }
    }
}

impl<T> Slab<T> {
    pub fn insert(&mut self, value: T) -> u32 {
        match self.vacant.pop() {
            Some(index) => {
                self.entries[index as usize] = Some(value);
                index
            }
            None => {
                self.entries.push(Some(value));
                u32::try_from(self.entries.len() - 1).expect("fewer than 2^32 entries")
            }
        }
    }

    pub fn remove(&mut self, index: u32) -> T {
        let value = self.entries[index as usize].take().expect("a live entry");
        self.vacant.push(index);
        value
    }

    /// Gives back the room of many removals (a flood forgotten), when at most a quarter
    /// of the entries are live: free entries at the end are dropped, and later inserts
    /// take the lowest free indices first, so the live entries gather at the start and
    /// the end keeps emptying. No index of a live entry changes.
    pub fn tidy(&mut self) {
        if self.len() * 4 > self.entries.len() {
            return;
        }
        while matches!(self.entries.last(), Some(None)) {
            self.entries.pop();
        }
        let bound = self.entries.len();
        self.vacant.retain(|&index| (index as usize) < bound);
        // `insert` pops from the end: the lowest index.
        self.vacant.sort_unstable_by(|a, b| b.cmp(a));
        shrink::to_live(&mut self.entries);
        shrink::to_live(&mut self.vacant);
    }

    pub fn contains(&self, index: u32) -> bool {
        matches!(self.entries.get(index as usize), Some(Some(_)))
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.entries.len() - self.vacant.len()
    }

    /// One past the highest index ever handed out: the size of a table indexed by entry.
    pub fn index_bound(&self) -> usize {
        self.entries.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        (0..)
            .zip(&self.entries)
            .filter_map(|(index, entry)| Some((index, entry.as_ref()?)))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u32, &mut T)> {
        (0..)
            .zip(&mut self.entries)
            .filter_map(|(index, entry)| Some((index, entry.as_mut()?)))
    }
}

impl<T> Index<u32> for Slab<T> {
    type Output = T;

    fn index(&self, index: u32) -> &T {
        self.entries[index as usize].as_ref().expect("a live entry")
    }
}

impl<T> IndexMut<u32> for Slab<T> {
    fn index_mut(&mut self, index: u32) -> &mut T {
        self.entries[index as usize].as_mut().expect("a live entry")
    }
}
