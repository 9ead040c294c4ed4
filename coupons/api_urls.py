from .api import CouponTemplateViewSet, CouponViewSet


def register(router):
    router.register("coupon-templates", CouponTemplateViewSet, basename="coupontemplate")
    router.register("coupons", CouponViewSet, basename="coupon")
