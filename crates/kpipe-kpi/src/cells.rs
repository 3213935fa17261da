//! The numbering of cells (entity, term, currency): every cell gets an id on first sight, so
//! that each day and period keeps its cells in a vector indexed by id rather than in a hash
//! map of its own.
//!
//! There are a few hundred thousand cells in a large account set and each is looked up for
//! every row, so the index is built for memory as much as for speed: a sorted list per entity
//! (an entity has a few dozen cells at most) rather than one hash map of packed keys, which
//! at its load factor holds up to twice its entries' size in buckets.

/// A cell's key: `owner << 32 | term << 16 | currency`.
pub(crate) type CellKey = u64;

/// The cells seen, by entity.
#[derive(Debug, Default)]
pub(crate) struct CellIndex {
    /// Per entity id, its cells as (term << 16 | currency, cell id), sorted.
    by_entity: Vec<Vec<(u32, u32)>>,
    /// Per cell id, its key.
    keys: Vec<CellKey>,
}

impl CellIndex {
    /// The id of the cell `key`, if it was seen.
    pub fn get(&self, key: CellKey) -> Option<u32> {
        let (entity, low) = split(key);
        let cells = self.by_entity.get(entity)?;
        cells.binary_search_by_key(&low, |c| c.0).ok().map(|i| cells[i].1)
    }

    /// The id of the cell `key`, numbered on first sight, and whether it is new.
    pub fn intern(&mut self, key: CellKey) -> (u32, bool) {
        let (entity, low) = split(key);
        if self.by_entity.len() <= entity {
            self.by_entity.resize_with(entity + 1, Vec::new);
        }
        let cells = &mut self.by_entity[entity];
        match cells.binary_search_by_key(&low, |c| c.0) {
            Ok(i) => (cells[i].1, false),
            Err(i) => {
                let id = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
                cells.insert(i, (low, id));
                grow_gently(&mut self.keys);
                self.keys.push(key);
                (id, true)
            }
        }
    }

    /// The key of cell `id`.
    pub fn key(&self, id: u32) -> CellKey {
        self.keys[id as usize]
    }

    /// Every cell's key, by id.
    pub fn keys(&self) -> &[CellKey] {
        &self.keys
    }

    /// How many cells were seen.
    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

fn split(key: CellKey) -> (usize, u32) {
    ((key >> 32) as usize, key as u32)
}

/// Makes room for one more element by a quarter of the length rather than by doubling: the
/// vectors indexed by cell id are the largest the computation holds, they stop growing after
/// the first days, and doubling would leave up to half of each unused for the whole run.
pub(crate) fn grow_gently<T>(v: &mut Vec<T>) {
    if v.len() == v.capacity() {
        v.reserve_exact(v.len() / 4 + 64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_cells_in_order_first_seen() {
        let mut index = CellIndex::default();
        let k = |owner: u64, term: u64, currency: u64| owner << 32 | term << 16 | currency;
        assert_eq!(index.intern(k(3, 7, 1)), (0, true));
        assert_eq!(index.intern(k(0, 2, 0)), (1, true));
        assert_eq!(index.intern(k(3, 2, 0)), (2, true));
        assert_eq!(index.intern(k(3, 7, 1)), (0, false));
        assert_eq!(index.get(k(3, 2, 0)), Some(2));
        assert_eq!(index.get(k(3, 2, 1)), None);
        assert_eq!(index.get(k(9, 2, 0)), None, "an entity never seen");
        assert_eq!(index.len(), 3);
        assert_eq!(index.key(1), k(0, 2, 0));
        assert_eq!(index.keys(), &[k(3, 7, 1), k(0, 2, 0), k(3, 2, 0)]);
    }

    #[test]
    fn grows_by_a_quarter() {
        let mut v: Vec<u8> = Vec::new();
        for i in 0..10_000u32 {
            grow_gently(&mut v);
            v.push(i as u8);
        }
        assert!(v.capacity() <= 10_000 + 10_000 / 4 + 64, "capacity {}", v.capacity());
    }
}
