//! `/mod` before signing in: one field, the moderator token. A plain form post, so it works
//! before (and without) the page's script.

use super::{BUTTON, INPUT};
use crate::{api::SIGN_IN_PATH, components::Flame};
use leptos::prelude::*;

#[component]
pub fn SignIn(
    /// Why the last try failed.
    error: Option<String>,
) -> impl IntoView {
    view! {
        <main class="mx-auto max-w-md px-4 py-16 sm:py-24">
            <p class="flex items-center gap-2 text-lg font-bold tracking-tight text-orange-700 dark:text-orange-400">
                <Flame class="size-6" />
                "Burner"
            </p>
            <h1 class="mt-3 text-2xl font-bold tracking-tight">"Moderator sign-in"</h1>
            <p class="mt-2 text-sm text-stone-600 dark:text-stone-400">
                "The token is in the server's data directory ("<code>"moderator.token"</code>
                "), or in "<code>"BURNER_MOD_TOKEN"</code>"."
            </p>
            <form
                action=SIGN_IN_PATH
                method="post"
                class="mt-6 space-y-4 rounded-2xl border border-stone-200 bg-white p-5 shadow-sm dark:border-stone-800 dark:bg-stone-900"
            >
                <div>
                    <label for="token" class="block text-sm font-medium text-stone-800 dark:text-stone-200">"Moderator token"</label>
                    <input
                        id="token"
                        name="token"
                        type="password"
                        required
                        autocomplete="current-password"
                        aria-describedby="token-error"
                        class=format!("mt-1 {INPUT}")
                    />
                </div>
                <p id="token-error" role="alert" class="text-sm font-medium text-red-700 empty:hidden dark:text-red-400">{error}</p>
                <button type="submit" class=format!("w-full {BUTTON}")>"Sign in"</button>
            </form>
        </main>
    }
}
