"""Product domain: catalogue rows, restock notifications, ERP sync and analytics jobs."""
