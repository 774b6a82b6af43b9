"""Rows for the floor app: as many orders as the product has, the buyer under test with as many."""

from django.db import connection


def seed_floor(*, orders: int, buyer_orders: int) -> dict:
    """Fill floor_floororder like the product's orders table (buyer 1 is the one listed)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO floor_floororder
                (buyer_id, supplier_id, status, currency, total, summary, terms, placed_at)
            SELECT CASE WHEN n <= %s THEN 1 ELSE 2 + n %% 2000 END, 1 + n %% 200, 'completed',
                   'USD', 1400.00, 'Bluetooth speaker model ' || n,
                   '{"items": [{"description": "Bluetooth speaker", "quantity": "100"}]}',
                   now() - n * interval '1 minute'
            FROM generate_series(1, %s) AS n
            """,
            [buyer_orders, orders],
        )
        cursor.execute("ANALYZE floor_floororder")
        cursor.execute("SELECT min(id) FROM floor_floororder WHERE buyer_id = 1")
        order_id = cursor.fetchone()[0]
    return {"buyer_id": 1, "order_id": order_id}
