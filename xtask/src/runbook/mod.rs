//! The runbook's steps, each a function from its inputs to what it found: connectivity (2),
//! inventory and the history (3), apply (4), the security advisors, rollback, the schema snapshots and the rows a
//! rollback lost (5), the RLS
//! contract (6). Steps do not call each other; the commands call them in order and collect what
//! they return into the record.

pub mod advisors;
pub mod apply;
pub mod batch;
pub mod catch_up;
pub mod chain;
pub mod connectivity;
pub mod drift;
pub mod fresh;
pub mod history;
pub mod inventory;
pub mod rls;
pub mod rollback;
pub mod rows;
pub mod snapshot;
