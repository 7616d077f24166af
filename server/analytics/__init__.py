"""Analytics for shop owners: spend by month, category, merchant and device; taxes per period."""
