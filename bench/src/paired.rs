//! Equal load, paired: Burner and the server its targets are set against (Bun.serve), both
//! started and filled at once, then each offered rate run on one and then the other, in
//! alternating order, for several rounds. A server's climb to saturation takes minutes, and the
//! kernel's cost per delivery (most of either server's CPU at low load) drifts by a fifth over
//! minutes on a shared machine: two climbs run one after the other compare two different hours.
//! Here every round compares the two servers within seconds of each other, and the ratio is the
//! median of the rounds' own ratios.

use crate::{Filled, Load, ROOM_SIZE, Settings, Step, members, peer::Peer, report};
use std::time::Duration;

/// One offered rate, the same for both servers.
pub struct Paired {
    pub rate: u64,
    /// Each round's step, Burner's and the other's.
    pub rounds: Vec<(Step, Step)>,
}

impl Paired {
    /// The median of the rounds' ratios of deliveries per server CPU-second, Burner over the
    /// other, with the lowest and highest; `None` without a round.
    pub fn ratio(&self) -> Option<(f64, f64, f64)> {
        let mut ratios: Vec<f64> =
            self.rounds.iter().map(|(burner, other)| burner.per_cpu_second() / other.per_cpu_second()).collect();
        ratios.sort_by(f64::total_cmp);
        Some((median(&ratios)?, *ratios.first()?, *ratios.last()?))
    }

    /// The median over the rounds of what `of` picks from a step, Burner's and the other's.
    pub fn medians(&self, of: impl Fn(&Step) -> f64) -> Option<(f64, f64)> {
        let mut burner: Vec<f64> = self.rounds.iter().map(|(b, _)| of(b)).collect();
        let mut other: Vec<f64> = self.rounds.iter().map(|(_, o)| of(o)).collect();
        burner.sort_by(f64::total_cmp);
        other.sort_by(f64::total_cmp);
        Some((median(&burner)?, median(&other)?))
    }

    /// Whether every round of both servers delivered everything with p99 under the limit.
    pub fn passed(&self) -> bool {
        self.rounds.iter().all(|(burner, other)| burner.passed() && other.passed())
    }

    /// Whether a server used the whole core in some round: its deliveries per CPU-second are
    /// then simply what was offered, and the ratio says how much was asked, not how well it was
    /// done.
    pub fn core_bound(&self, step: Duration) -> bool {
        // The drain after a step is mostly idle: the step's own length is the whole core.
        let whole = 0.95 * step.as_secs_f64();
        self.rounds.iter().any(|(burner, other)| burner.server_cpu >= whole || other.server_cpu >= whole)
    }
}

fn median(sorted: &[f64]) -> Option<f64> {
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        len if len.is_multiple_of(2) => Some((sorted[mid - 1] + sorted[mid]) / 2.0),
        _ => Some(sorted[mid]),
    }
}

/// Runs the paired rates of `settings` against `burner` and `other`, both filled at once (the
/// one not being measured has only idle members meanwhile, and each step waits until both are
/// quiet). Stops at the first rate a server fails: past saturation the figures measure
/// overload, not efficiency (and a server that closed members as too slow would deliver to
/// fewer in the rounds after). An error ends the run; the rates finished before it are kept.
pub async fn run(burner: &Peer, other: &Peer, settings: &Settings) -> (Vec<Paired>, Option<anyhow::Error>) {
    let mut paired = Vec::new();
    let error = offer_rates(burner, other, settings, &mut paired).await.err();
    (paired, error)
}

async fn offer_rates(burner: &Peer, other: &Peer, settings: &Settings, paired: &mut Vec<Paired>) -> anyhow::Result<()> {
    let Some(&first_rate) = settings.paired_rates.first() else { return Ok(()) };
    let (burner_rooms, other_rooms) = (Filled::start(burner, settings).await?, Filled::start(other, settings).await?);
    let loads = [burner_rooms.load(burner, 100), other_rooms.load(other, 100)];
    // A warm-up the figures do not see (JIT compilers, first allocations), for each.
    let warm_up = settings.warm_up();
    for load in &loads {
        load.offer(first_rate, &warm_up).await?;
    }
    for &rate in settings.paired_rates {
        let mut rounds = Vec::with_capacity(settings.paired_rounds);
        for round in 0..settings.paired_rounds {
            // Alternating who goes first, so neither is always the one after a quiet spell.
            let order = if round.is_multiple_of(2) { [0, 1] } else { [1, 0] };
            let first = step(&loads, order[0], rate, round, settings).await?;
            let second = step(&loads, order[1], rate, round, settings).await?;
            rounds.push(if order[0] == 0 { (first, second) } else { (second, first) });
        }
        let done = Paired { rate, rounds };
        let failed = !done.passed();
        paired.push(done);
        if failed {
            break;
        }
    }
    Ok(())
}

/// One step at `rate` on `loads[at]` once both servers are quiet, reported as the climb's are.
async fn step(loads: &[Load<'_>; 2], at: usize, rate: u64, round: usize, settings: &Settings) -> anyhow::Result<Step> {
    for load in loads {
        members::settle(load.tally, Duration::from_secs(20)).await;
    }
    let load = &loads[at];
    let step = load.offer(rate, settings).await?;
    print!("  round {}, {}:", round + 1, load.peer.name);
    report(&step, settings);
    // As in the climb: a smoke run proves that both servers deliver everything.
    if settings.smoke && step.lost() > 0 {
        anyhow::bail!("{}: the smoke step lost {} messages", load.peer.name, step.lost());
    }
    Ok(step)
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
        let (Some((burner, peer)), Some((ratio, low, high)), Some((p99_burner, p99_peer))) =
            (at.medians(Step::per_cpu_second), at.ratio(), at.medians(|step| step.p99))
        else {
            continue;
        };
        let mut notes = Vec::new();
        if !at.passed() {
            notes.push("a step lost messages or passed 50 ms p99");
        }
        if at.core_bound(settings.step) {
            notes.push("a server used the whole core: deliveries per CPU-second are then what was offered");
        }
        let notes = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join("; ")) };
        out.push_str(&format!(
            "| {} | {burner:.0} | {peer:.0} | {ratio:.2} ({low:.2}–{high:.2}){notes} | {p99_burner:.1} / {p99_peer:.1} ms |\n",
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
        assert_eq!(paired.ratio(), Some((1.0, 1.0, 2.0)));
        assert_eq!(paired.medians(Step::per_cpu_second), Some((2_000.0, 1_000.0)));
        assert_eq!(Paired { rate: 800, rounds: Vec::new() }.ratio(), None);
    }

    #[test]
    fn an_even_number_of_rounds_takes_the_middle_two() {
        assert_eq!(median(&[1.0, 2.0, 4.0, 8.0]), Some(3.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn a_server_that_used_the_whole_core_is_marked() {
        let step_of = |server_cpu| Step { server_cpu, ..step(1_000, 1.0) };
        let paired = |cpu| Paired { rate: 800, rounds: vec![(step_of(0.4), step_of(cpu))] };
        assert!(!paired(0.5).core_bound(Duration::from_secs(1)));
        assert!(paired(0.98).core_bound(Duration::from_secs(1)));
    }
}
