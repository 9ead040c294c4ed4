# Django's zh-Hans formats group digits with no separator ("23540"); Chinese business software
# prints counts and money with a comma every three digits ("23,540"), as receipts and reports do.
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
