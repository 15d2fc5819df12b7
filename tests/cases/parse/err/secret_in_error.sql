-- The error must show what was written, never the value of SECRET.
CREATE CONNECTION pg TO POSTGRES (url = 'postgres://app:${SECRET}@db/shop', url = '${SECRET}');
