"""The fixed ingredients of the demo brand: its stores, the words its members' names are made of,
its products and the stories its members live through. Pure data, so that a seed always means the
same brand."""

BRAND_NAME = "Urban Thread 城纺"
DEFAULT_SLUG = "demo"

# code, name, city, region, guides in the store, share of members (per mille)
STORES = [
    ("SH01", "上海南京西路店", "上海", "华东", 3, 150),
    ("SH02", "上海徐家汇店", "上海", "华东", 2, 100),
    ("BJ01", "北京三里屯店", "北京", "华北", 3, 120),
    ("BJ02", "北京西单店", "北京", "华北", 2, 90),
    ("HZ01", "杭州湖滨银泰店", "杭州", "华东", 3, 100),
    ("SZ01", "深圳万象城店", "深圳", "华南", 3, 100),
    ("GZ01", "广州天河城店", "广州", "华南", 2, 90),
    ("CD01", "成都太古里店", "成都", "西南", 3, 90),
    ("NJ01", "南京新街口店", "南京", "华东", 2, 80),
    ("WH01", "武汉江汉路店", "武汉", "华中", 2, 80),
]

# Where members live when it is not their store's city.
CITIES = [
    "上海", "北京", "杭州", "深圳", "广州", "成都", "南京", "武汉", "苏州", "宁波",
    "天津", "重庆", "西安", "长沙", "青岛", "厦门", "无锡", "佛山", "东莞", "合肥",
]

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
FEMALE_CHARS = "婷静丽雪敏芳琳欣怡佳雨晓梦思诗雅萱颖慧倩娜妍洁璐瑶悦晴薇蕾露冰月玉珊涵菲彤琪嘉宁蓉"
MALE_CHARS = "伟强磊军杰涛斌浩鹏宇俊峰辉明超刚勇健博文凯毅晨阳帆航睿哲轩然诚远志鑫泽宁昊天龙"

# Mobile prefixes in use in mainland China (first three digits of an 11-digit number).
MOBILE_PREFIXES = [
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155",
    "156", "157", "158", "159", "166", "173", "175", "176", "177", "180", "181", "182", "183", "185",
    "186", "187", "188", "189", "191", "195", "198", "199",
]
# Walk-in customers who bought without being members yet: numbers no demo member has.
WALK_IN_PREFIXES = ["145", "147", "149"]

# source channel, share (per cent)
CHANNELS = [
    ("store_qr", 34), ("parcel_card", 15), ("mini_program", 16), ("sms_link", 9),
    ("poster", 8), ("livestream", 10), ("referral", 5), ("island_counter", 3),
]

# category, share of lines (per cent) when not the member's favourite
CATEGORIES = [("apparel", 46), ("shoes_bags", 18), ("accessories", 16), ("beauty", 12), ("household", 8)]

# Twelve products per category: (name, price in yuan). SKU codes are derived from the position.
PRODUCTS = {
    "apparel": [
        ("基础款纯棉圆领T恤", 79), ("oversize连帽卫衣", 199), ("高腰阔腿牛仔裤", 239), ("法式碎花连衣裙", 299),
        ("宽松针织开衫", 259), ("垂感西装外套", 459), ("百褶半身裙", 169), ("防晒冰丝衬衫", 149),
        ("轻薄羽绒服", 599), ("工装束脚裤", 189), ("修身打底针织衫", 129), ("双面呢大衣", 899),
    ],
    "shoes_bags": [
        ("厚底小白鞋", 269), ("复古德训鞋", 299), ("乐福鞋", 329), ("切尔西短靴", 459),
        ("帆布托特包", 99), ("腋下小方包", 229), ("通勤双肩包", 279), ("链条斜挎包", 259),
        ("一脚蹬休闲鞋", 199), ("运动老爹鞋", 369), ("凉拖鞋", 69), ("水桶包", 239),
    ],
    "accessories": [
        ("珍珠耳钉", 59), ("羊毛围巾", 129), ("棒球帽", 79), ("细款皮带", 99),
        ("抓夹发饰", 29), ("简约项链", 89), ("渔夫帽", 89), ("针织手套", 69),
        ("墨镜", 149), ("丝巾", 119), ("中筒袜三双装", 39), ("手机挂绳", 35),
    ],
    "beauty": [
        ("丝绒哑光口红", 129), ("保湿精华水", 199), ("氨基酸洗面奶", 89), ("持妆粉底液", 259),
        ("香氛护手霜", 59), ("淡香水50ml", 329), ("眼影盘", 169), ("防晒乳", 139),
        ("卸妆油", 119), ("身体乳", 99), ("睫毛膏", 109), ("面膜五片装", 79),
    ],
    "household": [
        ("香薰蜡烛", 89), ("纯棉毛巾两条装", 49), ("陶瓷马克杯", 59), ("收纳篮", 69),
        ("四件套床品", 399), ("抱枕", 99), ("保温杯", 129), ("家居拖鞋", 49),
        ("珊瑚绒睡衣套装", 199), ("香薰扩香瓶", 119), ("餐具套装", 159), ("折叠脏衣篓", 79),
    ],
}

# Lifecycle stories: (key, share per cent, orders (min, max), events (min, max)).
# never: joined, never bought; one_off: one order; growing: two or three, recent;
# regular: buys every few weeks, last order within 45 days; drifting: last order 65-175 days ago;
# gone: last order more than 190 days ago; won_back: bought, went quiet for over 195 days, bought again.
STORIES = [
    ("never", 20, (0, 0), (1, 4)),
    ("one_off", 15, (1, 1), (1, 4)),
    ("growing", 10, (2, 3), (2, 6)),
    ("regular", 22, (10, 38), (4, 10)),
    ("drifting", 13, (4, 12), (2, 6)),
    ("gone", 13, (2, 8), (1, 3)),
    ("won_back", 7, (6, 14), (3, 8)),
]

# Interactions besides adding and deleting the guide: (type, share per cent).
EVENT_TYPES = [
    ("message_read", 34), ("page_view", 20), ("sign_in", 12), ("message_replied", 10),
    ("coupon_claimed", 10), ("group_joined", 7), ("survey_completed", 4), ("group_left", 3),
]

# Demo logins: (key, role, password). Usernames are the key on the default tenant and
# "<slug>-<key>" on any other, because usernames are global.
LOGINS = [
    ("owner", "owner", "demo-owner-1"),
    ("operator", "operator", "demo-operator-1"),
    ("manager", "store_manager", "demo-manager-1"),
    ("guide", "guide", "demo-guide-1"),
]
