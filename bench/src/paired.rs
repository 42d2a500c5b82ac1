//! Equal load, paired: Burner and the server its targets are set against (Bun.serve), both
//! started and filled at once, then each offered rate run on one and then the other, in
//! alternating order, for several rounds. A server's climb to saturation takes minutes, and the
//! kernel's cost per delivery (most of either server's CPU at low load) drifts by a fifth over
//! minutes on a shared machine: two climbs run one after the other compare two different hours.
//! Here every round compares the two servers within seconds of each other, and the ratio is the
//! median of the rounds' own ratios.

use crate::{Filled, ROOM_SIZE, Settings, Step, members, peer::Peer};
use std::time::Duration;

/// One offered rate, the same for both servers.
pub struct Paired {
    pub rate: u64,
    /// Each round's step, Burner's and the other's.
    pub rounds: Vec<(Step, Step)>,
}

impl Paired {
    /// The median of the rounds' ratios of deliveries per server CPU-second, Burner over the
    /// other; with the lowest and highest.
    pub fn ratio(&self) -> (f64, f64, f64) {
        let mut ratios: Vec<f64> =
            self.rounds.iter().map(|(burner, other)| burner.per_cpu_second() / other.per_cpu_second()).collect();
        ratios.sort_by(f64::total_cmp);
        (median(&ratios), ratios[0], ratios[ratios.len() - 1])
    }

    /// The median over the rounds of what `of` picks from a step, Burner's and the other's.
    pub fn medians(&self, of: impl Fn(&Step) -> f64) -> (f64, f64) {
        let mut burner: Vec<f64> = self.rounds.iter().map(|(b, _)| of(b)).collect();
        let mut other: Vec<f64> = self.rounds.iter().map(|(_, o)| of(o)).collect();
        burner.sort_by(f64::total_cmp);
        other.sort_by(f64::total_cmp);
        (median(&burner), median(&other))
    }

    /// Whether every round of both servers delivered everything with p99 under the limit.
    pub fn passed(&self) -> bool {
        self.rounds.iter().all(|(burner, other)| burner.passed() && other.passed())
    }
}

fn median(sorted: &[f64]) -> f64 {
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) { (sorted[mid - 1] + sorted[mid]) / 2.0 } else { sorted[mid] }
}

/// Runs the paired rates of `settings` against `burner` and `other`, both filled at once (the
/// one not being measured has only idle members meanwhile). Stops at the first rate a server
/// fails: past saturation the figures measure overload, not efficiency.
pub async fn run(burner: &Peer, other: &Peer, settings: &Settings) -> anyhow::Result<Vec<Paired>> {
    let (burner_rooms, other_rooms) = (Filled::start(burner, settings).await?, Filled::start(other, settings).await?);
    let loads = [burner_rooms.load(burner, 100), other_rooms.load(other, 100)];
    // A warm-up the figures do not see (JIT compilers, first allocations), for each.
    let warm_up = Settings { step: Duration::from_secs(1), smoke: true, ..*settings };
    for load in &loads {
        load.offer(settings.paired_rates[0], &warm_up).await?;
    }
    let mut paired = Vec::new();
    for &rate in settings.paired_rates {
        let mut rounds = Vec::with_capacity(settings.paired_rounds);
        for round in 0..settings.paired_rounds {
            // Alternating who goes first, so neither is always the one after a quiet spell.
            let order = if round.is_multiple_of(2) { [0, 1] } else { [1, 0] };
            let mut steps: [Option<Step>; 2] = [None, None];
            for at in order {
                members::settle(loads[at].tally, Duration::from_secs(20)).await;
                let step = loads[at].offer(rate, settings).await?;
                println!(
                    "  {:>6} msg/s, round {}, {}: {:.0} deliveries per server CPU-s, lost {}, p99 {:.1} ms",
                    rate,
                    round + 1,
                    [burner.name, other.name][at],
                    step.per_cpu_second(),
                    step.lost(),
                    step.p99
                );
                steps[at] = Some(step);
            }
            if let [Some(burner_step), Some(other_step)] = steps {
                rounds.push((burner_step, other_step));
            }
        }
        let done = Paired { rate, rounds };
        let failed = !done.passed();
        paired.push(done);
        if failed && !settings.smoke {
            break;
        }
    }
    Ok(paired)
}

/// The paired table: per rate, both servers' deliveries per CPU-second and p99 (medians over
/// the rounds) and the median ratio with its range.
pub fn table(paired: &[Paired], other: &str, settings: &Settings) -> String {
    let mut out = format!(
        "\nEqual load, paired: Burner and {other} filled at once ({} rooms of {ROOM_SIZE}, 100-byte messages), each rate \
         offered to one and then the other, {} rounds in alternating order, {:.1} s steps; medians over the rounds\n\n",
        settings.rooms,
        settings.paired_rounds,
        settings.step.as_secs_f64()
    );
    out.push_str(&format!(
        "| msg/s | Burner, deliveries per CPU-second | {other} | Burner ÷ {other} (lowest–highest round) | p99 Burner / {other} |\n"
    ));
    out.push_str("|---:|---:|---:|---:|---:|\n");
    for at in paired {
        if at.rounds.is_empty() {
            continue;
        }
        let (burner, peer) = at.medians(Step::per_cpu_second);
        let (ratio, low, high) = at.ratio();
        let (p99_burner, p99_peer) = at.medians(|step| step.p99);
        let missed = if at.passed() { "" } else { " (a step lost messages or passed 50 ms p99)" };
        out.push_str(&format!(
            "| {} | {burner:.0} | {peer:.0} | {ratio:.2} ({low:.2}–{high:.2}){missed} | {p99_burner:.1} / {p99_peer:.1} ms |\n",
            at.rate
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(delivered: u64, server_cpu: f64) -> Step {
        Step { delivered, server_cpu, sent: delivered / ROOM_SIZE as u64, ..Step::default() }
    }

    #[test]
    fn the_ratio_is_the_median_of_the_rounds_own_ratios() {
        // Burner's best round beside the other's worst would say 3.0; the rounds say 1.0 each
        // but one.
        let paired = Paired {
            rate: 800,
            rounds: vec![
                (step(3_000, 1.0), step(3_000, 1.0)),
                (step(1_000, 1.0), step(1_000, 1.0)),
                (step(2_000, 1.0), step(1_000, 1.0)),
            ],
        };
        assert_eq!(paired.ratio(), (1.0, 1.0, 2.0));
        assert_eq!(paired.medians(Step::per_cpu_second), (2_000.0, 1_000.0));
    }

    #[test]
    fn an_even_number_of_rounds_takes_the_middle_two() {
        assert_eq!(median(&[1.0, 2.0, 4.0, 8.0]), 3.0);
    }
}
