//! The pages: the landing page with the room directory, a room, "not found", and the
//! moderators' sign-in and console.

#[cfg(feature = "console")]
mod console;
mod home;
mod not_found;
mod room;
mod sign_in;

#[cfg(feature = "console")]
pub use console::Console;
pub use home::HomePage;
pub use not_found::NotFound;
pub use room::RoomPage;
pub use sign_in::SignIn;

/// Shared look of text inputs.
const INPUT: &str = "block w-full rounded-lg border border-stone-300 bg-white px-3 py-2 text-base text-stone-900 shadow-sm placeholder:text-stone-400 focus:border-orange-500 focus:outline-none focus:ring-2 focus:ring-orange-500/30 dark:border-stone-700 dark:bg-stone-900 dark:text-stone-100";
/// Shared look of the main buttons.
const BUTTON: &str = "inline-flex shrink-0 items-center whitespace-nowrap justify-center rounded-lg bg-orange-700 px-4 py-2 font-semibold text-white shadow-sm hover:bg-orange-800 focus-visible:outline focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-orange-600 disabled:cursor-not-allowed disabled:opacity-60";
