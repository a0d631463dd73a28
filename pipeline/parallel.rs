//! A small ordered parallel map over the machine's cores, for independent work items (the files
//! of a load, the record sets to finalise and write). Results come back in input order, so what a
//! load produces never depends on scheduling; a panic in a worker propagates.

use std::sync::Mutex;

/// Applies `f` to every item on up to `available_parallelism` threads; results in input order.
pub fn par_map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let n = items.len();
    let workers = std::thread::available_parallelism().map_or(1, |w| w.get()).min(n).max(1);
    if workers == 1 {
        return items.into_iter().map(f).collect();
    }
    let queue = Mutex::new(items.into_iter().enumerate());
    let results: Vec<Mutex<Option<R>>> = (0..n).map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let next = match queue.lock() {
                        Ok(mut q) => q.next(),
                        Err(_) => None,
                    };
                    let Some((i, item)) = next else { break };
                    let r = f(item);
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    results.into_iter().filter_map(|m| m.into_inner().ok().flatten()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_input_order() {
        let v: Vec<u64> = (0..100).collect();
        let out = par_map(v, |x| {
            std::thread::sleep(std::time::Duration::from_micros((100 - x) * 10));
            x * 2
        });
        assert_eq!(out, (0..100).map(|x| x * 2).collect::<Vec<_>>());
    }
}
