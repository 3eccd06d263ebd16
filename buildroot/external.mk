include $(sort $(wildcard $(BR2_EXTERNAL_PIOT_PATH)/package/*/*.mk))
