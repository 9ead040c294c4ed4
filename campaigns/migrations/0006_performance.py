from decimal import Decimal

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0005_surveys")]

    operations = [
        migrations.AddField(
            model_name="outreachsettings",
            name="commission_rate",
            field=models.DecimalField(
                decimal_places=2, default=Decimal("3.00"), max_digits=5, verbose_name="commission rate (%)",
                help_text="Commission (业绩分佣): this share of the attributed sales is credited to the guide.",
                validators=[django.core.validators.MinValueValidator(Decimal("0")),
                            django.core.validators.MaxValueValidator(Decimal("100"))],
            ),
        ),
    ]
