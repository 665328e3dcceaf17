//! The conformance cases, grouped by topic. Each is a plain public async function taking a
//! [`Ctx`](crate::Ctx); [`all`] lists them in suite order with the capabilities they need.

pub mod concurrency;
pub mod conditional;
pub mod crud;
pub mod input;
pub mod layout;
pub mod lifecycle;
pub mod model;
pub mod tags;
pub mod transactions;
pub mod ttl;

use crate::case::{Case, Need};

macro_rules! suite {
    ($( $module:ident :: $case:ident $( [ $($need:ident),* ] )? ),* $(,)?) => {
        /// Every case of the suite, in order.
        pub fn all() -> Vec<Case> {
            vec![$(
                Case {
                    name: stringify!($case),
                    needs: &[$($(Need::$need),*)?],
                    run: |ctx| Box::pin($module::$case(ctx)),
                },
            )*]
        }
    };
}

suite! {
    crud::put_get_delete,
    crud::overwrite,
    crud::every_byte_value,
    crud::empty_value,
    crud::large_value_16mib,
    crud::compression,
    crud::metadata,
    crud::get_many,
    crud::delete_many,
    crud::json,
    input::hostile_keys_round_trip,
    input::key_limits,
    input::value_limits,
    input::invalid_spaces,
    input::invalid_tags,
    input::invalid_ttls,
    input::invalid_limits,
    input::invalid_urls,
    layout::space_isolation,
    layout::spaces_listed,
    layout::batch_atomicity [AtomicBatch],
    layout::batch_checks,
    layout::batch_ops_apply_in_order,
    layout::stored_length_is_the_value_length,
    layout::scan_order_and_paging,
    layout::len_and_clear,
    tags::tags_all_any,
    tags::tags_many_in_one_query,
    tags::tags_paging,
    tags::list_tags_counts,
    tags::delete_by_tag,
    tags::tags_replaced_on_overwrite,
    ttl::ttl_hidden_everywhere,
    ttl::ttl_expired_key_is_absent_for_writes,
    ttl::ttl_sweep_removes,
    ttl::ttl_background_sweeper,
    ttl::ttl_sweep_spares_rewrites,
    ttl::ttl_touch_persist,
    conditional::set_if_absent,
    conditional::compare_and_swap,
    conditional::cas_concurrent,
    conditional::incr_concurrent,
    conditional::incr_errors,
    concurrency::concurrent_mixed_ops,
    transactions::tx_commit_visibility,
    transactions::tx_rollback,
    transactions::tx_conflict,
    transactions::tx_concurrent_transfers,
    lifecycle::persistence_across_reopen [Persistent],
    lifecycle::closed_store,
    lifecycle::stats,
    model::model_random_ops,
}
