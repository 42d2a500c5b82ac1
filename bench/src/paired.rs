//! Equal load, paired: Burner and the server its targets are set against (Bun.serve), all
//! started and filled at once, then each offered rate run on one after the other, in turning
//! order, for several rounds. A server's climb to saturation takes minutes, and the kernel's
//! cost per delivery (most of either server's CPU at low load) drifts by a fifth over minutes on
//! a shared machine: two climbs run one after the other compare two different hours. Here every
//! round compares the servers within seconds of each other, and a ratio is the median of the
//! rounds' own ratios.
//!
//! Bun.serve runs twice: sending each message on verbatim, as the targets were set, and sending
//! it as Burner does (a frame with its author, number and time: about twice the bytes, and a
//! frame built per message). The second tells what Burner's frames cost from what its
//! machinery does.

use crate::{Filled, Load, ROOM_SIZE, Settings, Step, members, peer::Peer, report};
use std::time::Duration;

/// The bytes of every message offered.
const PAYLOAD: usize = 100;

/// One offered rate, the same for every server.
pub struct Paired {
    pub rate: u64,
    /// Each round's steps: Burner's, then each other server's in the order they were given.
    pub rounds: Vec<Vec<Step>>,
}

impl Paired {
    /// The median of the rounds' ratios of deliveries per server CPU-second, Burner over
    /// server `other` (1 for the first after Burner), with the lowest and highest; `None`
    /// without a round.
    pub fn ratio(&self, other: usize) -> Option<(f64, f64, f64)> {
        let ratios = sorted(self.rounds.iter().map(|steps| steps[0].per_cpu_second() / steps[other].per_cpu_second()));
        Some((median(&ratios)?, *ratios.first()?, *ratios.last()?))
    }

    /// The median over the rounds of what `of` picks from server `server`'s step (0 for Burner).
    pub fn median(&self, server: usize, of: impl Fn(&Step) -> f64) -> Option<f64> {
        median(&sorted(self.rounds.iter().map(|steps| of(&steps[server]))))
    }

    /// Whether every round of every server delivered everything with p99 under the limit.
    pub fn passed(&self) -> bool {
        self.rounds.iter().flatten().all(Step::passed)
    }

    /// Whether a server used the whole core in some round: its deliveries per CPU-second are
    /// then simply what was offered, and the ratio says how much was asked, not how well it was
    /// done.
    pub fn core_bound(&self, step: Duration) -> bool {
        // The drain after a step is mostly idle: the step's own length is the whole core.
        let whole = 0.95 * step.as_secs_f64();
        self.rounds.iter().flatten().any(|step| step.server_cpu >= whole)
    }
}

fn sorted(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values
}

fn median(sorted: &[f64]) -> Option<f64> {
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        len if len.is_multiple_of(2) => Some((sorted[mid - 1] + sorted[mid]) / 2.0),
        _ => Some(sorted[mid]),
    }
}

/// Runs the paired rates of `settings` against `burner` and `others`, all filled at once (the
/// ones not being measured have only idle members meanwhile, and each step waits until all are
/// quiet). Stops at the first rate a server fails: past saturation the figures measure
/// overload, not efficiency (and a server that closed members as too slow would deliver to
/// fewer in the rounds after). An error ends the run; the rates finished before it are kept.
pub async fn run(burner: &Peer, others: &[Peer], settings: &Settings) -> (Vec<Paired>, Option<anyhow::Error>) {
    let mut paired = Vec::new();
    let error = offer_rates(burner, others, settings, &mut paired).await.err();
    (paired, error)
}

async fn offer_rates(
    burner: &Peer,
    others: &[Peer],
    settings: &Settings,
    paired: &mut Vec<Paired>,
) -> anyhow::Result<()> {
    let Some(&first_rate) = settings.paired_rates.first() else { return Ok(()) };
    let peers: Vec<&Peer> = std::iter::once(burner).chain(others).collect();
    let mut filled = Vec::with_capacity(peers.len());
    for peer in &peers {
        filled.push(Filled::start(peer, settings).await?);
    }
    let loads: Vec<Load> = filled.iter().zip(&peers).map(|(rooms, peer)| rooms.load(peer, PAYLOAD)).collect();
    // A warm-up the figures do not see (JIT compilers, first allocations), for each.
    let warm_up = settings.warm_up();
    for load in &loads {
        load.offer(first_rate, &warm_up).await?;
    }
    for &rate in settings.paired_rates {
        let mut rounds = Vec::with_capacity(settings.paired_rounds);
        for round in 0..settings.paired_rounds {
            // The order turns from round to round, so no server is always the one after a quiet
            // spell, or always the one after a busy one.
            let mut steps: Vec<Option<Step>> = (0..loads.len()).map(|_| None).collect();
            for at in turned(loads.len(), round) {
                steps[at] = Some(step(&loads, at, rate, round, settings).await?);
            }
            let steps: Vec<Step> = steps.into_iter().flatten().collect();
            frames_as_named(&steps, &peers)?;
            rounds.push(steps);
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

/// Fails unless each server of a round sent the frames it stands for: a frame as Burner's
/// weighs (within a tenth) what Burner's own do, and one sent verbatim weighs the message. A
/// peer meant to send Burner's frames that fell back to the message alone would otherwise
/// still deliver everything, and its column would compare the wrong thing.
fn frames_as_named(steps: &[Step], peers: &[&Peer]) -> anyhow::Result<()> {
    let burners = steps[0].bytes_per_delivery();
    for (step, peer) in steps.iter().zip(peers).filter(|(step, _)| step.delivered > 0) {
        let weight = step.bytes_per_delivery();
        let (expected, close) = if peer.burners_frames { (burners, 0.1 * burners) } else { (PAYLOAD as f64, 0.5) };
        anyhow::ensure!(
            (weight - expected).abs() <= close,
            "{} sent frames of {weight:.0} bytes a delivery where {expected:.0} were expected ({})",
            peer.name,
            if peer.burners_frames { "Burner's frames" } else { "the message verbatim" }
        );
    }
    Ok(())
}

/// The order of `servers` in round `round`: 0, 1, 2…, then 1, 2…, 0, and so on.
fn turned(servers: usize, round: usize) -> impl Iterator<Item = usize> {
    (0..servers).map(move |at| (at + round) % servers)
}

/// One step at `rate` on `loads[at]` once every server is quiet, reported as the climb's are.
async fn step(loads: &[Load<'_>], at: usize, rate: u64, round: usize, settings: &Settings) -> anyhow::Result<Step> {
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

/// The paired table: per rate, every server's deliveries per CPU-second and p99 (medians over
/// the rounds), and the median ratio of Burner to each other server with its range.
pub fn table(paired: &[Paired], others: &[&str], settings: &Settings) -> String {
    let mut out = format!(
        "\nEqual load, paired: Burner and {} filled at once ({} rooms of {ROOM_SIZE}, 100-byte messages), each rate \
         offered to one after the other, {} rounds in turning order, {:.1} s steps; medians over the rounds\n\n",
        others.join(" and "),
        settings.rooms,
        settings.paired_rounds,
        settings.step.as_secs_f64()
    );
    out.push_str(&header(others));
    for at in paired.iter().filter(|at| !at.rounds.is_empty()) {
        out.push_str(&row(at, others.len(), settings.step));
    }
    if let Some(first) = paired.first() {
        let weights: Vec<String> = std::iter::once("Burner")
            .chain(others.iter().copied())
            .enumerate()
            .map(|(server, name)| {
                format!("{name} {:.0} B", first.median(server, Step::bytes_per_delivery).unwrap_or(f64::NAN))
            })
            .collect();
        out.push_str(&format!("\nA delivery's frame (its payload): {}.\n", weights.join(", ")));
    }
    out
}

/// The table's head: a ratio column beside each other server's figure.
fn header(others: &[&str]) -> String {
    let mut out = String::from("| msg/s | Burner, deliveries per CPU-second |");
    for other in others {
        out.push_str(&format!(" {other} | Burner ÷ {other} (lowest–highest round) |"));
    }
    out.push_str(&format!(" p99 Burner / {} |\n", others.join(" / ")));
    out.push_str(&format!("|---:|---:|{}---:|\n", "---:|---:|".repeat(others.len())));
    out
}

/// One rate's row, a cell for each of the head's columns (the medians are there for a rate
/// with rounds, the only ones `table` writes).
fn row(at: &Paired, others: usize, step: Duration) -> String {
    let figure = |server, of: fn(&Step) -> f64| at.median(server, of).unwrap_or(f64::NAN);
    let mut row = format!("| {} | {:.0} |", at.rate, figure(0, Step::per_cpu_second));
    for server in 1..=others {
        let (ratio, low, high) = at.ratio(server).unwrap_or((f64::NAN, f64::NAN, f64::NAN));
        row.push_str(&format!(" {:.0} | {ratio:.2} ({low:.2}–{high:.2}) |", figure(server, Step::per_cpu_second)));
    }
    let p99: Vec<String> = (0..=others).map(|server| format!("{:.1}", figure(server, |step| step.p99))).collect();
    let mut notes = Vec::new();
    if !at.passed() {
        notes.push("a step lost messages or passed 50 ms p99");
    }
    if at.core_bound(step) {
        notes.push("a server used the whole core: deliveries per CPU-second are then what was offered");
    }
    let notes = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join("; ")) };
    format!("{row} {} ms{notes} |\n", p99.join(" / "))
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
                vec![step(3_000, 1.0), step(3_000, 1.0), step(1_500, 1.0)],
                vec![step(1_000, 1.0), step(1_000, 1.0), step(500, 1.0)],
                vec![step(2_000, 1.0), step(1_000, 1.0), step(2_000, 1.0)],
            ],
        };
        assert_eq!(paired.ratio(1), Some((1.0, 1.0, 2.0)));
        assert_eq!(paired.ratio(2), Some((2.0, 1.0, 2.0)));
        assert_eq!(paired.median(0, Step::per_cpu_second), Some(2_000.0));
        assert_eq!(paired.median(1, Step::per_cpu_second), Some(1_000.0));
        assert_eq!(Paired { rate: 800, rounds: Vec::new() }.ratio(1), None);
    }

    #[test]
    fn the_order_turns_so_that_each_server_goes_first_in_turn() {
        let orders: Vec<Vec<usize>> = (0..4).map(|round| turned(3, round).collect()).collect();
        assert_eq!(orders, [vec![0, 1, 2], vec![1, 2, 0], vec![2, 0, 1], vec![0, 1, 2]]);
        assert_eq!(turned(2, 1).collect::<Vec<_>>(), [1, 0], "two servers alternate");
    }

    #[test]
    fn an_even_number_of_rounds_takes_the_middle_two() {
        assert_eq!(median(&[1.0, 2.0, 4.0, 8.0]), Some(3.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn a_row_has_a_cell_for_each_column_of_the_head() {
        let cells = |line: &str| line.matches(" | ").count();
        let paired = Paired { rate: 800, rounds: vec![vec![step(2_000, 1.0), step(1_000, 1.0), step(4_000, 1.0)]] };
        let header = header(&["Bun", "Bun stamped"]);
        let row = row(&paired, 2, Duration::from_secs(5));
        assert_eq!(cells(&row), cells(header.lines().next().expect("a head")), "{header}{row}");
        assert!(row.starts_with("| 800 | 2000 | 1000 | 2.00 (2.00–2.00) | 4000 | 0.50 (0.50–0.50) |"), "{row}");
    }

    #[test]
    fn a_peer_must_send_the_frames_its_column_is_named_for() {
        let paths = crate::peer::Paths { target: "t".into(), peers: "p".into(), venv: "v".into() };
        let (verbatim, stamped) = (Peer::bun(&paths, false), Peer::bun(&paths, true));
        let mut burner = Peer::bun(&paths, false);
        burner.burners_frames = true;
        let peers = [&burner, &verbatim, &stamped];
        let weighing =
            |bytes_per_delivery: u64| Step { delivered_bytes: 1_000 * bytes_per_delivery, ..step(1_000, 1.0) };
        assert!(frames_as_named(&[weighing(230), weighing(100), weighing(220)], &peers).is_ok());
        let error = frames_as_named(&[weighing(230), weighing(100), weighing(100)], &peers).expect_err("fell back");
        assert!(error.to_string().contains("Bun.serve (Burner's frames) sent frames of 100 bytes"), "{error}");
        assert!(frames_as_named(&[weighing(230), weighing(230), weighing(230)], &peers).is_err(), "verbatim stamped");
    }

    #[test]
    fn a_server_that_used_the_whole_core_is_marked() {
        let step_of = |server_cpu| Step { server_cpu, ..step(1_000, 1.0) };
        let paired = |cpu| Paired { rate: 800, rounds: vec![vec![step_of(0.4), step_of(0.4), step_of(cpu)]] };
        assert!(!paired(0.5).core_bound(Duration::from_secs(1)));
        assert!(paired(0.98).core_bound(Duration::from_secs(1)));
    }
}
