"""Reference data the demo quarter draws from: sources, firmographics, people, reasons.

Companies live under the reserved ``.example`` domain, so no generated address is real.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from domain.events import Bant


@dataclass(frozen=True, slots=True)
class Source:
    """Where leads come from, how well they fit the ICP and how engaged they arrive."""

    name: str
    weight: float
    actor: str
    campaigns: tuple[str, ...]
    fit_tiers: tuple[float, float, float, float]  # ideal, good, average, poor
    intents: tuple[float, float, float]  # cold, warm, hot
    first_touch: str | None  # the engagement that captured the lead, if any


SOURCES: tuple[Source, ...] = (
    Source(
        "web_form",
        0.28,
        "webform",
        ("website-organic", "ebook-state-of-revops-2026", "newsletter-signup"),
        (0.06, 0.24, 0.40, 0.30),
        (0.50, 0.38, 0.12),
        "form_submit",
    ),
    Source(
        "paid_search",
        0.20,
        "ads-landing-page",
        ("ppc-brand", "ppc-competitor-switch", "ppc-pipeline-analytics"),
        (0.04, 0.20, 0.40, 0.36),
        (0.55, 0.35, 0.10),
        "content_download",
    ),
    Source(
        "webinar",
        0.15,
        "webinar-platform",
        ("webinar-forecasting-jan", "webinar-revops-feb", "webinar-pipeline-hygiene-mar"),
        (0.06, 0.30, 0.40, 0.24),
        (0.30, 0.50, 0.20),
        "webinar_attended",
    ),
    Source(
        "events",
        0.10,
        "event-badge-scan",
        ("saas-connect-2026", "revops-summit-berlin"),
        (0.08, 0.32, 0.36, 0.24),
        (0.50, 0.35, 0.15),
        None,
    ),
    Source(
        "outbound",
        0.15,
        "sdr-prospecting",
        ("outbound-fintech-q1", "outbound-enterprise-abm"),
        (0.14, 0.46, 0.30, 0.10),
        (0.60, 0.32, 0.08),
        None,
    ),
    Source(
        "referral",
        0.12,
        "partner-portal",
        ("partner-referral", "customer-referral"),
        (0.16, 0.44, 0.30, 0.10),
        (0.25, 0.45, 0.30),
        None,
    ),
)

# How likely each firmographic attribute lands inside the ideal customer profile, per tier.
FIT_TIER_MATCH: dict[str, float] = {"ideal": 1.0, "good": 0.62, "average": 0.4, "poor": 0.12}
FIT_TIERS: tuple[str, ...] = ("ideal", "good", "average", "poor")

ICP_INDUSTRIES = ("software", "saas", "fintech", "ecommerce", "financial services", "internet")
OTHER_INDUSTRIES = (
    "manufacturing",
    "healthcare",
    "education",
    "retail",
    "logistics",
    "public sector",
    "media",
    "consulting",
    "non-profit",
)
ICP_EMPLOYEES = ((50, 200), (201, 1000), (1001, 5000))
OTHER_EMPLOYEES = ((2, 49), (5001, 40000))
SENIOR_TITLES = (
    "VP Sales",
    "Head of Revenue Operations",
    "Director of Marketing",
    "Chief Revenue Officer",
    "CFO",
    "Co-Founder",
    "VP Marketing",
    "Head of Sales Development",
)
OTHER_TITLES = (
    "Sales Operations Analyst",
    "Marketing Manager",
    "Account Executive",
    "Demand Generation Specialist",
    "Business Analyst",
    "Student",
    "Software Engineer",
    "Office Manager",
)
ICP_COUNTRIES = ("US", "DE", "GB", "NL", "FR", "SE", "CA", "CH")
OTHER_COUNTRIES = ("BR", "IN", "PL", "ES", "AU", "SG", "ZA", "MX")

FIRST_NAMES = (
    "anna", "ben", "carla", "david", "elif", "felix", "grace", "hugo", "ines", "jonas",
    "kira", "liam", "maya", "noah", "olga", "paul", "quinn", "rosa", "sam", "tara",
    "umar", "vera", "will", "xenia", "yusuf", "zoe",
)  # fmt: skip
LAST_NAMES = (
    "schmidt", "jones", "garcia", "novak", "dubois", "rossi", "larsen", "kowalski",
    "okafor", "tanaka", "smith", "meyer", "silva", "nguyen", "berg", "murphy",
    "fischer", "haddad", "costa", "lindqvist",
)  # fmt: skip
COMPANY_PREFIXES = (
    "nord", "bright", "quantum", "blue", "iron", "clear", "swift", "atlas", "nova",
    "terra", "pixel", "summit", "vertex", "cobalt", "lumen", "orbit",
)  # fmt: skip
COMPANY_SUFFIXES = (
    "labs", "systems", "logistics", "health", "pay", "works", "cloud", "retail",
    "analytics", "robotics", "foods", "media",
)  # fmt: skip

SDRS = ("sdr.jonas", "sdr.maya", "sdr.liam")
ACCOUNT_EXECUTIVES = ("ae.carla", "ae.hugo", "ae.tara", "ae.will")
MARKETING_OPS = "marketing-ops"
ENGAGEMENT_ACTOR = "marketing-automation"

COLD_KINDS = (("email_open", 6), ("page_view", 4), ("email_click", 1), ("unsubscribe", 1))
WARM_KINDS = (
    ("page_view", 4),
    ("email_open", 3),
    ("email_click", 3),
    ("content_download", 2),
    ("pricing_page_view", 2),
    ("form_submit", 1),
    ("webinar_attended", 1),
)
HOT_KINDS = (
    ("pricing_page_view", 4),
    ("page_view", 3),
    ("email_click", 3),
    ("webinar_attended", 2),
    ("content_download", 2),
    ("form_submit", 2),
    ("demo_request", 2),
)

CONTACT_OUTCOMES = {
    "call": ("connected", "left voicemail", "no answer", "call booked"),
    "email": ("replied", "no reply", "out of office"),
    "social": ("connection accepted", "replied on LinkedIn"),
}
REJECT_REASONS = (
    "no budget this fiscal year",
    "not the decision maker; no introduction possible",
    "already under contract with a competitor until 2027",
    "researching only, no active project",
    "company too small for our offering",
)
DISQUALIFY_AT_CAPTURE = (
    "invalid contact data (bounced email)",
    "student researching for a thesis",
    "works for a competitor",
)
DISQUALIFY_AFTER_DISCOVERY = (
    "needs on-premise deployment, which we do not offer",
    "no budget and no plan to get one",
    "company being acquired; all purchases frozen",
)
RECYCLE_REASONS = (
    "timing: no project before H2",
    "champion left the company",
    "evaluation postponed after reorganisation",
)
REOPEN_LEAD_REASONS = ("disqualified by mistake: budget confirmed by the CFO",)
MANUAL_MQL_REASONS = {
    "events": "asked for a follow-up at the booth",
    "recycled": "re-engaged after the nurture campaign",
}
FAST_TRACK_REASON = "demo request from a perfect-fit account (fit {fit:g})"
FAST_TRACK_CONVERSION_REASON = "urgent buying project: AE opened the deal after discovery"

BANT_OPTIONS = (
    ("EUR 40k approved for FY2026", "EUR 80k earmarked in the RevOps budget", "budget follows ROI"),
    ("VP Sales signs", "CFO signs above EUR 50k", "CRO owns the decision"),
    (
        "forecasting is spreadsheet-based",
        "no view on stalled deals",
        "MQL handover to sales is lost in email",
    ),
    ("go-live before Q3", "decision this quarter", "pilot in 60 days, rollout after"),
)


def bant(answers: Sequence[str]) -> Bant:
    budget, authority, need, timeline = answers
    return Bant(budget=budget, authority=authority, need=need, timeline=timeline)


LOST_REASONS = (
    ("chose a competitor", 5),
    ("no decision: project cancelled", 3),
    ("price too high", 3),
    ("missing integration with their ERP", 2),
    ("went silent after the proposal", 2),
)
COMPETITORS = ("PipeCo", "FunnelWorks", "RevStack", "SalesGrid")
DEAL_BACKWARD_REASON = "scope changed: back to needs analysis"
DEAL_REOPEN_REASONS = (
    "customer came back after the competitor's pilot failed",
    "budget freed up after the reorganisation",
)

# Deal size by company size (employees upper bound -> amount range in EUR).
DEAL_SIZES = (
    (49, (5_000, 15_000)),
    (200, (12_000, 40_000)),
    (1000, (30_000, 90_000)),
    (5000, (60_000, 200_000)),
    (10**9, (120_000, 400_000)),
)
# Days a deal typically spends in an open stage before the next step, by position.
DEAL_DWELL_DAYS = ((3, 10), (5, 14), (5, 14), (3, 12))
