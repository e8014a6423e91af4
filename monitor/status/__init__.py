"""The status page: check history (hour and day rollups), the HTML pages and the badges."""
