"""Generated tables with every dtype the service handles, for the demo, tests and benchmarks.

`houses` is a regression table (price) whose target depends on numeric, categorical,
boolean and timestamp columns, with missing values, so that every encoding path runs.
The demo's `data/houses.csv` is `houses(2000, seed=0)` without `segment` (which is
derived from the price and would leak it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NEIGHBORHOODS = ("harbor", "old_town", "university", "riverside", "hills")


def houses(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """A mixed-type housing table; `price` is the label, `segment` a 3-class label."""
    rng = np.random.default_rng(seed)
    area = rng.gamma(6.0, 15.0, n) + 20
    rooms = np.clip(np.round(area / 25 + rng.normal(0, 0.8, n)), 1, 9).astype(int)
    hood = rng.choice(NEIGHBORHOODS, n, p=[0.15, 0.25, 0.2, 0.25, 0.15])
    garden = rng.random(n) < 0.4
    built = rng.integers(1900, 2024, n)
    listed = pd.Timestamp("2019-01-01") + pd.to_timedelta(rng.integers(0, 6 * 365, n), "D")
    premium = pd.Series(hood).map(
        {"harbor": 1.4, "old_town": 1.25, "university": 1.0, "riverside": 1.1, "hills": 1.3}
    ).to_numpy()
    years = (listed - pd.Timestamp("2019-01-01")).days.to_numpy() / 365
    price = (
        area * 3.2 * premium
        + 25 * garden
        + 0.004 * (built - 1960) ** 2
        + 18 * years
        + 8 * np.sin(rooms)
        + rng.normal(0, 15, n)
    )
    frame = pd.DataFrame(
        {
            "area_sqm": np.round(area, 1),
            "rooms": rooms,
            "neighborhood": hood,
            "has_garden": garden,
            "built_year": built,
            "listed_at": listed,
            "price": np.round(price, 2),
        }
    )
    frame["segment"] = pd.cut(
        frame["price"], [-np.inf, *np.quantile(frame["price"], [0.33, 0.66]), np.inf],
        labels=["budget", "mid", "premium"],
    ).astype(str)
    # Missing values in feature columns, as real tables have them.
    frame["area_sqm"] = frame["area_sqm"].mask(rng.random(n) < 0.03)
    frame["neighborhood"] = frame["neighborhood"].mask(rng.random(n) < 0.02)
    frame["built_year"] = frame["built_year"].astype("Int64").mask(rng.random(n) < 0.02)
    return frame
