//! The payment gateway seam. Charges and refunds are idempotent by key: the
//! same key twice moves money once. Real card or wallet adapters are a
//! non-goal for now; the two gateways here are the built-in ledger-only one
//! (prepaid or offline invoices: the ledger is the record) and a simulated
//! one that can be told to decline, for tests and demos.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use baobao_domain::Money;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    #[error("declined: {0}")]
    Declined(String),
}

#[async_trait]
pub trait PaymentGateway: Send + Sync {
    /// Charges `amount` under `key`; returns the gateway's reference.
    async fn charge(&self, key: &str, amount: Money) -> Result<String, GatewayError>;
    async fn refund(&self, key: &str, amount: Money) -> Result<String, GatewayError>;
    fn as_simulated(&self) -> Option<&SimulatedGateway> {
        None
    }
}

pub struct LedgerOnlyGateway;

#[async_trait]
impl PaymentGateway for LedgerOnlyGateway {
    async fn charge(&self, key: &str, _amount: Money) -> Result<String, GatewayError> {
        Ok(format!("ledger:{key}"))
    }

    async fn refund(&self, key: &str, _amount: Money) -> Result<String, GatewayError> {
        Ok(format!("ledger:{key}"))
    }
}

/// Declines charges while `decline_charges` is set; remembers what it did
/// per key (the reference and the signed amount: charges positive, refunds
/// negative) so that a retried key gets the first answer, and so that a
/// test can hold the ledger against the money that really moved.
#[derive(Default)]
pub struct SimulatedGateway {
    decline_charges: AtomicBool,
    fail_refunds: AtomicBool,
    /// While set, charges wait (as a slow provider would) until released.
    hold_charges: AtomicBool,
    charges_waiting: std::sync::atomic::AtomicUsize,
    released: tokio::sync::Notify,
    done: Mutex<HashMap<String, (String, i64)>>,
}

impl SimulatedGateway {
    pub fn set_decline_charges(&self, decline: bool) {
        self.decline_charges.store(decline, Ordering::SeqCst);
    }

    pub fn declines_charges(&self) -> bool {
        self.decline_charges.load(Ordering::SeqCst)
    }

    /// Makes charges wait until `hold_charges(false)`: a test can then
    /// show that nothing waits on the database while the gateway answers.
    pub fn hold_charges(&self, hold: bool) {
        self.hold_charges.store(hold, Ordering::SeqCst);
        if !hold {
            self.released.notify_waiters();
        }
    }

    /// Charges waiting for `hold_charges(false)`.
    pub fn charges_waiting(&self) -> usize {
        self.charges_waiting.load(Ordering::SeqCst)
    }

    async fn wait_while_held(&self) {
        self.charges_waiting.fetch_add(1, Ordering::SeqCst);
        loop {
            let released = self.released.notified();
            if !self.hold_charges.load(Ordering::SeqCst) {
                break;
            }
            released.await;
        }
        self.charges_waiting.fetch_sub(1, Ordering::SeqCst);
    }

    pub fn set_fail_refunds(&self, fail: bool) {
        self.fail_refunds.store(fail, Ordering::SeqCst);
    }

    pub fn fails_refunds(&self) -> bool {
        self.fail_refunds.load(Ordering::SeqCst)
    }

    fn remember(&self, key: &str, signed_amount_minor: i64) -> String {
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        done.entry(key.to_owned()).or_insert_with(|| (format!("sim:{key}"), signed_amount_minor)).0.clone()
    }

    /// Charges less refunds, over everything this gateway did.
    pub fn net_taken_minor(&self) -> i64 {
        self.done.lock().unwrap_or_else(|p| p.into_inner()).values().map(|(_, amount)| amount).sum()
    }
}

#[async_trait]
impl PaymentGateway for SimulatedGateway {
    async fn charge(&self, key: &str, amount: Money) -> Result<String, GatewayError> {
        self.wait_while_held().await;
        if let Some((reference, _)) = self.done.lock().unwrap_or_else(|p| p.into_inner()).get(key) {
            return Ok(reference.clone());
        }
        if self.declines_charges() {
            return Err(GatewayError::Declined("simulated decline".to_owned()));
        }
        Ok(self.remember(key, amount.amount_minor))
    }

    async fn refund(&self, key: &str, amount: Money) -> Result<String, GatewayError> {
        if let Some((reference, _)) = self.done.lock().unwrap_or_else(|p| p.into_inner()).get(key) {
            return Ok(reference.clone());
        }
        if self.fails_refunds() {
            return Err(GatewayError::Declined("simulated refund failure".to_owned()));
        }
        Ok(self.remember(key, -amount.amount_minor))
    }

    fn as_simulated(&self) -> Option<&SimulatedGateway> {
        Some(self)
    }
}
